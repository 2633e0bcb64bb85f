import { readFile } from 'node:fs/promises'
import { LRUCache } from 'lru-cache'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose'
import type { DeviceContext, Identity } from '../context.js'
import type { Store } from '../store/index.js'

const LIFETIME_S = 300
/** A signed assertion is reused for this long (it stays valid for LIFETIME_S from its iat). */
const REUSE_S = 60

/** An assertion signed for one identity, kept for reuse with the rest of what it asserts. */
interface Kept { aud: string; deviceId: string | null; deviceTrust: string; jwt: string; iat: number }
const KEPT_PER_IDENTITY = 8

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
  private readonly byIdentity = new WeakMap<Identity, Kept[]>()

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
    return (await this.signed(c, Math.floor(nowMs / 1000))).jwt
  }

  /**
   * The assertion for a request of `identity` to the app `aud` from `device`. Identities are
   * frozen and shared by every request of a session (or bearer token), so the assertions
   * signed for one are kept with it and found again without building a key: the common
   * request costs no crypto and no allocation. A string when one is at hand, else a promise.
   */
  assertionFor (identity: Identity, aud: string, device: DeviceContext, nowMs = Date.now()): string | Promise<string> {
    const now = Math.floor(nowMs / 1000)
    const kept = this.byIdentity.get(identity)
    if (kept !== undefined) {
      for (const k of kept) {
        if (k.aud === aud && k.deviceId === device.id && k.deviceTrust === device.trust && now - k.iat < REUSE_S) return k.jwt
      }
    }
    return this.signFor(identity, aud, device, now)
  }

  private async signFor (identity: Identity, aud: string, device: DeviceContext, now: number): Promise<string> {
    const { jwt, iat } = await this.signed({
      aud,
      sub: identity.sub,
      // An email the IdP has not verified is not asserted: apps would take it as proof.
      email: identity.email_verified === true ? identity.email : undefined,
      groups: identity.groups,
      device_id: device.id,
      device_trust: device.trust
    }, now)
    const kept = (this.byIdentity.get(identity) ?? []).filter((k) => k.aud !== aud || k.deviceId !== device.id || k.deviceTrust !== device.trust)
    kept.push({ aud, deviceId: device.id, deviceTrust: device.trust, jwt, iat })
    // A user reaches a few apps from a device or two; the oldest go first past that.
    this.byIdentity.set(identity, kept.slice(-KEPT_PER_IDENTITY))
    return jwt
  }

  private async signed (c: AssertionClaims, now: number): Promise<{ jwt: string; iat: number }> {
    // JSON, not a joined string: no two different claim sets can share a key.
    const cacheKey = JSON.stringify([c.aud, c.sub, c.email, c.device_id, c.device_trust, c.groups])
    const hit = this.cache.get(cacheKey)
    if (hit !== undefined && now - hit.iat < REUSE_S) return hit
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
    const signed = { jwt, iat: now }
    this.cache.set(cacheKey, signed)
    return signed
  }
}
