/**
 * JWTs a device signs with a key enrolled with `--public-key`: device tokens
 * (`X-Moatless-Device`, aud = authenticate.url) and posture reports (aud =
 * `<authenticate.url>/.moatless/device/report`). Both: ES256 or EdDSA, iss = the device id,
 * iat and exp with exp <= iat + 5 min, not issued in the future.
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose'
import type { DeviceRecord } from '../store/index.js'
import { DEVICE_KEY_ALGS, verificationKey } from './public-key.js'

export const MAX_LIFETIME_S = 300
/** Device and server clocks differ a little. */
export const CLOCK_SKEW_S = 60
export const MAX_TOKEN_LENGTH = 8192

/** What a JWT claims before any check: enough to find the device whose key must verify it. */
export type Unverified = { ok: true; iss: string; alg: string; kid: string | undefined; payload: JWTPayload } | { ok: false; reason: string }

/** Decodes without verifying. `ok: false` = not a JWT at all (malformed). */
export function peek (token: string): Unverified {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'the token is too long' }
  let header: ReturnType<typeof decodeProtectedHeader>
  let payload: JWTPayload
  try {
    header = decodeProtectedHeader(token)
    payload = decodeJwt(token)
  } catch {
    return { ok: false, reason: 'not a JWT' }
  }
  if (typeof payload.iss !== 'string' || payload.iss === '') return { ok: false, reason: 'the JWT has no iss (device id)' }
  return { ok: true, iss: payload.iss, alg: typeof header.alg === 'string' ? header.alg : '', kid: typeof header.kid === 'string' ? header.kid : undefined, payload }
}

export type DeviceJwtResult = { ok: true; payload: JWTPayload & { iat: number; exp: number } } | { ok: false; reason: string }

/**
 * Verifies the signature with one of the device's enrolled keys, and the claims. Returns a
 * reason (for logs and 401 bodies) instead of throwing: a bad device JWT is an answer, not an
 * error.
 */
export async function verifyDeviceJwt (token: string, claimed: Extract<Unverified, { ok: true }>, device: DeviceRecord, opts: { audience: string | string[]; now: number; subject?: boolean }): Promise<DeviceJwtResult> {
  if (!(DEVICE_KEY_ALGS as readonly string[]).includes(claimed.alg)) return { ok: false, reason: `algorithm ${claimed.alg || 'none'} is not accepted (ES256 or EdDSA)` }
  const keys = device.public_keys.filter((k) => k.alg === claimed.alg && (claimed.kid === undefined || k.kid === claimed.kid))
  if (keys.length === 0) return { ok: false, reason: 'no enrolled key of this device matches the token' }
  let lastError = 'signature verification failed'
  for (const key of keys) {
    try {
      const { payload } = await jwtVerify(token, await verificationKey(key), {
        algorithms: [claimed.alg],
        issuer: device.id,
        ...(opts.subject === true ? { subject: device.id } : {}),
        audience: opts.audience,
        requiredClaims: ['iat', 'exp'],
        currentDate: new Date(opts.now),
        clockTolerance: CLOCK_SKEW_S
      })
      const iat = payload.iat as number
      const exp = payload.exp as number
      if (exp - iat > MAX_LIFETIME_S) return { ok: false, reason: 'the token lives longer than 5 minutes (exp - iat)' }
      if (iat > opts.now / 1000 + CLOCK_SKEW_S) return { ok: false, reason: 'the token is issued in the future (iat)' }
      return { ok: true, payload: payload as JWTPayload & { iat: number; exp: number } }
    } catch (err) {
      const code = (err as { code?: string }).code
      lastError = code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
        ? 'bad signature'
        : code === 'ERR_JWT_EXPIRED' ? 'the token is expired' : (err as Error).message
      if (code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return { ok: false, reason: lastError }
    }
  }
  return { ok: false, reason: lastError }
}
