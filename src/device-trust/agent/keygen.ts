/**
 * The device key pair: the private key stays on the device (PKCS#8 PEM, mode 0600) and signs
 * its posture reports; the public key (SPKI PEM) is enrolled with
 * `moatless devices enroll --public-key`.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { chmod, mkdir, open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose'

import { PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, type DeviceAlg } from './types.js'

export async function generateDeviceKeyPair (alg: DeviceAlg): Promise<{ privatePem: string; publicPem: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) })
  return { privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey) }
}

async function exists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** Writes `content` to a new file (never over an existing one unless `force`) with `mode`. */
async function writeNew (path: string, content: string, mode: number, force: boolean): Promise<void> {
  const fh = await open(path, force ? 'w' : 'wx', mode)
  try {
    await fh.chmod(mode) // the umask may have narrowed it; a forced overwrite keeps the old mode otherwise
    await fh.writeFile(content)
  } finally {
    await fh.close()
  }
}

export class KeyExistsError extends Error {}

export async function writeDeviceKeys (dir: string, alg: DeviceAlg, options: { force?: boolean } = {}): Promise<{ privatePath: string; publicPath: string; publicPem: string }> {
  const force = options.force === true
  const privatePath = join(dir, PRIVATE_KEY_FILE)
  const publicPath = join(dir, PUBLIC_KEY_FILE)
  if (!force) {
    for (const p of [privatePath, publicPath]) {
      if (await exists(p)) throw new KeyExistsError(`${p} already exists; pass --force to replace the device key (the new public key must then be enrolled again)`)
    }
  }
  if (!(await exists(dir))) {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await chmod(dir, 0o700)
  }
  const { privatePem, publicPem } = await generateDeviceKeyPair(alg)
  await writeNew(privatePath, privatePem, 0o600, force)
  await writeNew(publicPath, publicPem, 0o644, force)
  return { privatePath, publicPath, publicPem }
}

/** The JWS algorithm a device private key signs with: EC P-256 → ES256, Ed25519 → EdDSA. */
export function deviceKeyAlg (key: KeyObject): DeviceAlg {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve
    if (curve === 'prime256v1' || curve === 'P-256') return 'ES256'
    throw new Error(`EC key on curve ${curve ?? 'unknown'}; device keys are P-256 (ES256) or Ed25519 (EdDSA)`)
  }
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  throw new Error(`${key.asymmetricKeyType ?? 'unknown'} key; device keys are P-256 (ES256) or Ed25519 (EdDSA)`)
}

/** A device private key from PEM (PKCS#8, or SEC1 "EC PRIVATE KEY"). */
export function parseDevicePrivateKey (pem: string): { key: KeyObject; alg: DeviceAlg } {
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch (err) {
    throw new Error(`not a PEM private key (${(err as Error).message})`)
  }
  return { key, alg: deviceKeyAlg(key) }
}
