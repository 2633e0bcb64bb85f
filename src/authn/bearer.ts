/**
 * `Authorization: Bearer <JWT>` for API clients: an ID token, or an RFC 9068 JWT access token
 * whose audience names our client, signed by the IdP with a key from its discovered jwks_uri.
 *
 * Keys come only from the IdP's published JWKS (jose never follows a token's `jku`/`x5u` or
 * trusts an embedded `jwk`/`x5c`), only the asymmetric algorithms the IdP advertises are
 * accepted (so no `none`, no HS256 keyed with the public key), and issuer, audience and
 * expiry are always checked. When the keys cannot be had (IdP undiscovered, JWKS fetch failing)
 * the answer is `unavailable`, never a guess.
 */
import { jwtVerify, type JWTPayload } from 'jose'
import type { Identity } from '../context.js'
import { CredentialCache, ownCopy, type CredentialEntry } from '../store/index.js'
import type { Idp } from './oidc.js'

export type BearerResult =
  | { status: 'ok'; identity: Identity }
  /** `reason` is '<kebab-case code>: <plain words>' and never contains the token. */
  | { status: 'invalid'; reason: string }
  | { status: 'unavailable' }

/** What the client's Authorization header(s) amount to. */
export type BearerCredential =
  | { kind: 'none' }
  | { kind: 'token'; token: string }
  | { kind: 'invalid'; reason: string }

export interface BearerVerifierOptions {
  /** Clock in ms since epoch (tests freeze it). Default Date.now. */
  now?: () => number
  /** Most verified tokens kept. Default 10 000. */
  cacheMax?: number
}

/** A verified token is trusted again without crypto for at most this long (and never past its exp). */
const CACHE_FOR_MS = 60_000
const CLOCK_TOLERANCE_S = 30
const UNAVAILABLE: BearerResult = Object.freeze({ status: 'unavailable' })

/**
 * jose failures that the token itself causes (401). Everything else — the JWKS fetch failing,
 * timing out or answering garbage, the IdP not discovered — means the token cannot be judged
 * (503): failing closed is the default for anything not listed here.
 */
const TOKEN_FAULTS: Readonly<Record<string, string>> = {
  ERR_JWS_INVALID: 'malformed',
  ERR_JWT_INVALID: 'malformed',
  ERR_JOSE_NOT_SUPPORTED: 'malformed',
  ERR_JOSE_ALG_NOT_ALLOWED: 'alg-not-allowed',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'bad-signature',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'bad-signature',
  ERR_JWKS_NO_MATCHING_KEY: 'unknown-key',
  ERR_JWK_INVALID: 'unknown-key',
  ERR_JWT_EXPIRED: 'expired',
  ERR_JWT_CLAIM_VALIDATION_FAILED: 'claim-invalid'
}

/** A verified token as the cache keeps it (found by its signature's last characters). */
interface Cached extends CredentialEntry<Cached> { readonly result: BearerResult; readonly until: number }

export class BearerVerifier {
  private readonly cache: CredentialCache<Cached>
  private readonly now: () => number

  constructor (private readonly idp: Idp, private readonly groupsClaim: string, opts: BearerVerifierOptions = {}) {
    this.now = opts.now ?? Date.now
    this.cache = new CredentialCache<Cached>(opts.cacheMax ?? 10_000, 'end')
  }

  /** The result for a token verified within the last minute (and not expired since); else undefined. */
  cached (token: string, now = this.now()): BearerResult | undefined {
    const hit = this.cache.get(token)
    if (hit === undefined) return undefined
    if (hit.until > now) return hit.result
    this.cache.delete(token)
    return undefined
  }

  async verify (token: string): Promise<BearerResult> {
    const now = this.now()
    const known = this.cached(token, now)
    if (known !== undefined) return known
    // Checked here, not for every request: a token found above is the very string verified.
    if (!B64TOKEN.test(token)) return invalid('malformed', 'not a bearer token')

    let payload: JWTPayload
    let typ: unknown
    try {
      const getKey = await this.idp.jwks()
      const verified = await jwtVerify(token, getKey, {
        issuer: this.idp.issuer,
        audience: this.idp.clientId,
        algorithms: this.idp.signingAlgs(),
        requiredClaims: ['exp', 'iat', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(now)
      })
      payload = verified.payload
      typ = verified.protectedHeader.typ
    } catch (err) {
      return judge(err)
    }

    // Other JWTs the IdP signs for us (logout tokens, introspection responses, ...) carry our
    // client_id as audience too: only the two kinds that identify a user are accepted.
    const kind = tokenKind(typ)
    if (kind === null) return invalid('wrong-type', 'neither an ID token nor a JWT access token (header typ)')
    if (typeof payload.sub !== 'string' || payload.sub === '') return invalid('claim-invalid', '"sub" must be a non-empty string')
    // jose checks iat's type but not that it lies in the past.
    if ((payload.iat as number) > now / 1000 + CLOCK_TOLERANCE_S) return invalid('not-yet-valid', '"iat" is in the future')
    // An ID token listing several audiences was issued to its azp, which must be us.
    if (kind === 'id' && payload.azp !== undefined && payload.azp !== this.idp.clientId) return invalid('wrong-audience', 'ID token issued to another client (azp)')

    const result: BearerResult = Object.freeze({ status: 'ok', identity: identityFrom(payload, this.groupsClaim) })
    const until = Math.min((payload.exp as number) * 1000, now + CACHE_FOR_MS)
    if (until > now) this.cache.add({ credential: ownCopy(token), result, until, next: null })
    return result
  }
}

/** 'id' for an ID token (typ absent or JWT), 'access' for RFC 9068 `at+jwt`, null for anything else. */
export function tokenKind (typ: unknown): 'id' | 'access' | null {
  if (typ === undefined) return 'id'
  if (typeof typ !== 'string') return null
  const t = typ.toLowerCase()
  const media = t.startsWith('application/') ? t.slice('application/'.length) : t
  if (media === 'jwt') return 'id'
  if (media === 'at+jwt') return 'access'
  return null
}

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

/**
 * Reads the request's Authorization header(s) from the raw header list (Node keeps only the
 * first `authorization` in `req.headers`, so a second one would go unseen there). Another
 * scheme (Basic, ...) is not ours: 'none'. Two Authorization headers are ambiguous: 'invalid'.
 */
export function bearerCredential (rawHeaders: readonly string[]): BearerCredential {
  let value: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]
    if (name === undefined || name.length !== 13 || name.toLowerCase() !== 'authorization') continue
    if (value !== undefined) return { kind: 'invalid', reason: 'malformed: more than one Authorization header' }
    value = rawHeaders[i + 1] ?? ''
  }
  if (value === undefined) return { kind: 'none' }
  const v = value.trim()
  const space = v.indexOf(' ')
  const scheme = space === -1 ? v : v.slice(0, space)
  if (scheme.toLowerCase() !== 'bearer') return { kind: 'none' }
  const token = space === -1 ? '' : v.slice(space + 1).trimStart()
  // One token, or none: its characters are checked by BearerVerifier.verify (B64TOKEN).
  if (token.length === 0 || token.includes(' ')) return { kind: 'invalid', reason: 'malformed: not a bearer token' }
  return { kind: 'token', token }
}

function identityFrom (payload: JWTPayload, groupsClaim: string): Identity {
  const { nonce: _n, at_hash: _a, c_hash: _c, ...claims } = payload
  const g = payload[groupsClaim]
  const groups = typeof g === 'string' ? [g] : Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string') : []
  // Cached and shared by every request that presents the same token: frozen so no stage can
  // change what a later request sees.
  return Object.freeze({
    sub: payload.sub as string,
    ...(typeof payload.email === 'string' ? { email: payload.email } : {}),
    email_verified: payload.email_verified === true,
    groups: Object.freeze(groups) as string[],
    claims: Object.freeze(claims),
    via: 'bearer' as const
  })
}

function judge (err: unknown): BearerResult {
  const code = typeof (err as { code?: unknown } | null)?.code === 'string' ? (err as { code: string }).code : ''
  const fault = TOKEN_FAULTS[code]
  if (fault === undefined) return UNAVAILABLE
  const message = (err as Error).message
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const { claim, reason } = err as { claim?: string; reason?: string }
    if (reason === 'missing') return invalid('missing-claim', message)
    if (claim === 'iss') return invalid('wrong-issuer', message)
    if (claim === 'aud') return invalid('wrong-audience', message)
    if (claim === 'nbf') return invalid('not-yet-valid', message)
  }
  return invalid(fault, message)
}

function invalid (code: string, words: string): BearerResult {
  return { status: 'invalid', reason: `${code}: ${words}` }
}
