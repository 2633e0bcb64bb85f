/**
 * A device public key as enrolled with `moatless devices enroll --public-key FILE`: PEM SPKI
 * or a JWK, EC P-256 (ES256) or Ed25519 (EdDSA) only. The key signs the device's tokens
 * (`X-Moatless-Device`) and posture reports. Stored as a public JWK with `alg` and an RFC 7638
 * `kid`, never with private parts, whatever the file held.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, importJWK, type CryptoKey } from 'jose'
import type { DeviceKey } from '../store/index.js'

export const DEVICE_KEY_ALGS = ['ES256', 'EdDSA'] as const
export type DeviceKeyAlg = typeof DEVICE_KEY_ALGS[number]

export class DeviceKeyError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DeviceKeyError'
  }
}

/** Parses the content of a key file (PEM SPKI, or a JWK as JSON; a private JWK is reduced to its public part). */
export async function parseDevicePublicKey (text: string): Promise<DeviceKey> {
  const trimmed = text.trim()
  let key: KeyObject
  try {
    if (trimmed.startsWith('{')) {
      const jwk = JSON.parse(trimmed) as Record<string, unknown>
      if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new Error('not a JSON object')
      // Only the public members: createPublicKey would also accept a private JWK.
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk
      key = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' })
    } else if (trimmed.includes('-----BEGIN PUBLIC KEY-----')) {
      key = createPublicKey({ key: trimmed, format: 'pem' })
    } else if (trimmed.includes('PRIVATE KEY-----')) {
      throw new DeviceKeyError('this is a private key; enroll the public key (PEM "BEGIN PUBLIC KEY" or a public JWK)')
    } else {
      throw new DeviceKeyError('not a PEM public key ("-----BEGIN PUBLIC KEY-----") or a JWK')
    }
  } catch (err) {
    if (err instanceof DeviceKeyError) throw err
    throw new DeviceKeyError(`not a valid public key: ${(err as Error).message}`, { cause: err })
  }
  return await toDeviceKey(key)
}

async function toDeviceKey (key: KeyObject): Promise<DeviceKey> {
  const type = key.asymmetricKeyType
  const jwk = key.export({ format: 'jwk' }) as { kty: string; crv?: string; x?: string; y?: string }
  let out: Omit<DeviceKey, 'kid'>
  if (type === 'ec' && jwk.crv === 'P-256' && jwk.x !== undefined && jwk.y !== undefined) {
    out = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, alg: 'ES256' }
  } else if (type === 'ed25519' && jwk.x !== undefined) {
    out = { kty: 'OKP', crv: 'Ed25519', x: jwk.x, alg: 'EdDSA' }
  } else {
    const what = type === 'ec' ? `EC ${jwk.crv ?? 'curve'}` : (type ?? 'unknown').toUpperCase()
    throw new DeviceKeyError(`unsupported key type ${what}: only EC P-256 (ES256) or Ed25519 (EdDSA) keys sign device tokens`)
  }
  const kid = await calculateJwkThumbprint(out.kty === 'EC' ? { kty: 'EC', crv: out.crv, x: out.x, y: out.y } : { kty: 'OKP', crv: out.crv, x: out.x })
  return { ...out, kid }
}

const imported = new WeakMap<DeviceKey, Promise<CryptoKey | Uint8Array>>()

/** The key ready for jose, imported once per stored key object (records are replaced, not mutated). */
export function verificationKey (key: DeviceKey): Promise<CryptoKey | Uint8Array> {
  let k = imported.get(key)
  if (k === undefined) {
    const { kid: _kid, alg, ...jwk } = key
    k = importJWK(jwk, alg)
    imported.set(key, k)
  }
  return k
}
