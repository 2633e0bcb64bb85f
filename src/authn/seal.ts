import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Authenticated encryption (AES-256-GCM) of small JSON values with a key derived from
 * session.secret for one purpose, so a value sealed for one purpose (a cookie) cannot be
 * replayed as another (stored tokens).
 */
export class Sealer {
  private readonly key: Buffer

  constructor (secret: string, purpose: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'moatless-v1', purpose, 32))
  }

  seal (value: unknown): string {
    const iv = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', this.key, iv)
    const body = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()])
    return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url')
  }

  /**
   * The value, or null for anything tampered, truncated, foreign or malformed. Only the exact
   * text `seal` wrote is accepted: Node's base64url decoder skips characters it does not know
   * and padding, so without the check one sealed value had endless spellings (each a cache
   * entry of its own where unsealed values are remembered by their text).
   */
  unseal<T> (text: string): T | null {
    if (text.length < 40 || text.length > 8192) return null
    const raw = Buffer.from(text, 'base64url')
    if (raw.length < 29 || raw.toString('base64url') !== text) return null
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12))
      d.setAuthTag(raw.subarray(raw.length - 16))
      const plain = Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()])
      return JSON.parse(plain.toString('utf8')) as T
    } catch {
      return null
    }
  }
}
