import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { addStage, type RequestContext } from '../context.js'
import { bearerCredential, type BearerResult, type BearerVerifier } from './bearer.js'
import type { Sealer } from './seal.js'
import type { SessionLookup, SessionMemo, Sessions } from './sessions.js'
import { cookieNames, cookieValues } from './cookies.js'
import { CredentialCache, ownCopy, type CredentialEntry } from '../store/index.js'

/** The app a request is for (authn meets the rules only through the request context). */
type App = NonNullable<RequestContext['app']>

/** What an app-origin session cookie holds (sealed). */
export interface AppCookie { s: string; o: string }

export interface SessionStageOptions {
  sessions: Sessions
  cookieSealer: Sealer
  /** session.cache_size: how many unsealed cookies to remember (the one unsealed longest ago goes first). */
  cacheSize: number
  /** Verifies `Authorization: Bearer <JWT>` for API clients; absent, only cookies count. */
  bearer?: BearerVerifier
}

/** An unsealed session cookie as the cache keeps it: its origin, its session, and the session cache's entry last found for it. */
interface UnsealedCookie extends SessionMemo, CredentialEntry<UnsealedCookie> { readonly origin: string }

/**
 * The session a browser's cookie names, from memory. Unsealing (AES-GCM) costs microseconds
 * and a browser sends the same cookie on every request, so unsealed cookies are remembered,
 * each with the session cache's entry for it (a `SessionMemo`): a signed-in request then costs
 * one lookup in a table that grows with the number of users (a CredentialCache, keyed by the
 * random IV a sealed value begins with). Only successful unseals are remembered, so garbage
 * cannot crowd out real cookies for long; at most `max` are, and when more come, the one
 * unsealed longest ago goes (it is unsealed again if it comes back).
 */
export class CookieSessions {
  private readonly unsealed: CredentialCache<UnsealedCookie>

  constructor (private readonly sessions: Sessions, private readonly sealer: Sealer, max: number) {
    this.unsealed = new CredentialCache(max, 'start')
  }

  /** How many unsealed cookies are remembered. */
  get size (): number { return this.unsealed.size }

  /** The session cookie `value` as sealed by us, or null. */
  private cookie (value: string): UnsealedCookie | null {
    const known = this.unsealed.get(value)
    if (known !== undefined) return known
    const c = this.sealer.unseal<AppCookie>(value)
    if (c === null || typeof c.s !== 'string' || typeof c.o !== 'string') return null
    const fresh: UnsealedCookie = { credential: ownCopy(value), origin: c.o, id: c.s, hit: null, next: null }
    this.unsealed.add(fresh)
    return fresh
  }

  /** The session id in cookie `value` when it was sealed by us for `origin`, else null. */
  sessionId (value: string, origin: string): string | null {
    const c = this.cookie(value)
    return c === null || c.origin !== origin ? null : c.id
  }

  /**
   * The session cookie `value` names for `origin`, answered from memory: null when it is no
   * session cookie of ours for that origin, undefined when only the store can tell
   * (`Sessions.lookup`).
   */
  cached (value: string, origin: string): SessionLookup | null | undefined {
    const c = this.cookie(value)
    return c === null || c.origin !== origin ? null : this.sessions.cachedFor(c)
  }
}

/**
 * Stage 2: who the user is. Reads the app origin's own session cookie (sealed, bound to that
 * origin) and resolves the server-side session. A tampered, foreign, expired or revoked cookie
 * is simply no session. When the store cannot answer, the request is marked undecidable.
 *
 * Without a session, an `Authorization: Bearer` JWT from the IdP identifies the request
 * instead. A token that fails verification is not just "no identity": the request is marked
 * with the rule `invalid-token`, so authz answers 401 invalid_token (RFC 6750) rather than
 * sending an API client to a sign-in page.
 *
 * A signed-in browser's request is answered from memory (the unsealed cookie, the cached
 * session) without waiting on anything; only a session the cache cannot vouch for, or a
 * token not verified before, waits for the store or the IdP's keys.
 */
export const sessionStage = fp(async function sessionStage (fastify: FastifyInstance, opts: SessionStageOptions) {
  // One cache per sealer (per secret): a value is only ever trusted by the key that sealed it.
  const cookies = new CookieSessions(opts.sessions, opts.cookieSealer, opts.cacheSize)

  /** Cookie values not answered from the cache, from `from` on: each waits for the store. */
  const fromStore = async (req: FastifyRequest, app: App, values: string[], from: number): Promise<void> => {
    for (let i = from; i < values.length; i++) {
      const id = cookies.sessionId(values[i] as string, app.origin)
      if (id !== null && settles(req.moatless, app, await opts.sessions.lookup(id))) return
    }
    await fromBearer(req, opts.bearer)
  }

  addStage(fastify, (req) => {
    const ctx = req.moatless
    const app = ctx.app
    if (ctx.site !== 'app' || app === null || ctx.internal !== null) return
    const values = cookieValues(req.headers.cookie, cookieNames(app.origin.startsWith('https:')).session)
    for (let i = 0; i < values.length; i++) {
      const found = cookies.cached(values[i] as string, app.origin)
      if (found === null) continue
      if (found === undefined) return fromStore(req, app, values, i)
      if (settles(ctx, app, found)) return
    }
    return fromBearer(req, opts.bearer)
  })
}, { name: 'moatless-authn', fastify: '5.x', dependencies: ['moatless-intake'] })

/** Applies one session lookup to the request; true when that settles who it is from (or that nobody can tell). */
function settles (ctx: RequestContext, app: App, found: SessionLookup): boolean {
  if (found.status === 'unavailable') {
    ctx.unavailable = true
    ctx.decision = { decision: 'deny', rule: 'store-unavailable', reasons: ['the session store cannot be reached'] }
    return true
  }
  if (found.status !== 'ok') return false
  const maxAge = app.config.session_max_age
  if (maxAge !== undefined && Date.now() - found.record.created_at > maxAge) return false
  ctx.identity = found.identity
  return true
}

function fromBearer (req: FastifyRequest, bearer: BearerVerifier | undefined): undefined | Promise<void> {
  // Nothing to do (and nothing to scan) for the common request without the header.
  if (bearer === undefined || req.headers.authorization === undefined) return
  const credential = bearerCredential(req.raw.rawHeaders)
  if (credential.kind === 'none') return
  const ctx = req.moatless
  if (credential.kind === 'invalid') return settleBearer(ctx, { status: 'invalid', reason: credential.reason })
  const known = bearer.cached(credential.token)
  if (known !== undefined) return settleBearer(ctx, known)
  return bearer.verify(credential.token).then((result) => settleBearer(ctx, result))
}

function settleBearer (ctx: RequestContext, result: BearerResult): undefined {
  switch (result.status) {
    case 'ok':
      ctx.identity = result.identity
      return
    case 'unavailable':
      ctx.unavailable = true
      ctx.decision = { decision: 'deny', rule: 'idp-unavailable', reasons: ['the identity provider\'s keys cannot be fetched'] }
      return
    case 'invalid':
      ctx.decision = { decision: 'unauthenticated', rule: 'invalid-token', reasons: [`invalid-token: ${result.reason}`] }
  }
}
