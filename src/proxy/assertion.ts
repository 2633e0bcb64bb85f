import { readFile } from 'node:fs/promises'
import { LRUCache } from 'lru-cache'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose'
import type { Store } from '../store/index.js'

const LIFETIME_S = 300
/** A signed assertion is reused for this long (it stays valid for LIFETIME_S from its iat). */
const REUSE_S = 60

export interface AssertionClaims {
  aud: string
  sub: string
  email: string | undefined
  groups: string[]
  device_id: string | null
  device_trust: string
}

/**
 * Signs the X-Moatless-Jwt-Assertion (ES256) that tells upstreams who the request is from.
 * The key comes from `signing_key`, or is generated once and kept in the store so that
 * every replica signs with the same key.
 */
export class AssertionSigner {
  private readonly cache = new LRUCache<string, { jwt: string; iat: number }>({ max: 50_000 })

  private constructor (private readonly key: CryptoKey, private readonly kid: string, private readonly publicJwk: JWK, private readonly issuer: string) {}

  static async load (opts: { file?: string; store: Store; issuer: string }): Promise<AssertionSigner> {
    let jwk: JWK
    if (opts.file !== undefined) {
      jwk = JSON.parse(await readFile(opts.file, 'utf8')) as JWK
    } else {
      const { privateKey } = await generateKeyPair('ES256', { extractable: true })
      const fresh = await exportJWK(privateKey)
      jwk = JSON.parse(await opts.store.setIfAbsent('signing-key', JSON.stringify(fresh))) as JWK
    }
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.d === undefined) throw new Error('signing_key must be a private EC P-256 JWK (ES256)')
    const { d: _d, ...pub } = jwk
    const kid = await calculateJwkThumbprint(pub)
    const key = await importJWK({ ...jwk, alg: 'ES256' }, 'ES256') as CryptoKey
    return new AssertionSigner(key, kid, { ...pub, kid, alg: 'ES256', use: 'sig' }, opts.issuer)
  }

  jwks (): { keys: JWK[] } {
    return { keys: [this.publicJwk] }
  }

  async sign (c: AssertionClaims, nowMs = Date.now()): Promise<string> {
    const now = Math.floor(nowMs / 1000)
    // JSON, not a joined string: no two different claim sets can share a key.
    const cacheKey = JSON.stringify([c.aud, c.sub, c.email, c.device_id, c.device_trust, c.groups])
    const hit = this.cache.get(cacheKey)
    if (hit !== undefined && now - hit.iat < REUSE_S) return hit.jwt
    const jwt = await new SignJWT({
      email: c.email,
      groups: c.groups,
      device_id: c.device_id,
      device_trust: c.device_trust
    })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(c.aud)
      .setSubject(c.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + LIFETIME_S)
      .sign(this.key)
    this.cache.set(cacheKey, { jwt, iat: now })
    return jwt
  }
}
