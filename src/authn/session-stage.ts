import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import { addStage, type RequestContext } from '../context.js'
import { bearerCredential, type BearerResult, type BearerVerifier } from './bearer.js'
import type { Sealer } from './seal.js'
import type { SessionLookup, Sessions } from './sessions.js'
import { cookieNames, cookieValues } from './cookies.js'

/** The app a request is for (authn meets the rules only through the request context). */
type App = NonNullable<RequestContext['app']>

/** What an app-origin session cookie holds (sealed). */
export interface AppCookie { s: string; o: string }

export interface SessionStageOptions {
  sessions: Sessions
  cookieSealer: Sealer
  /** session.cache_size: how many unsealed cookies to remember (the least recently used go first). */
  cacheSize: number
  /** Verifies `Authorization: Bearer <JWT>` for API clients; absent, only cookies count. */
  bearer?: BearerVerifier
}

/**
 * Unsealing (AES-GCM) costs microseconds; a browser sends the same cookie on every request.
 * Only successful unseals are remembered, so garbage cannot crowd out real cookies for long.
 */
function unsealCached (unsealed: LRUCache<string, AppCookie>, sealer: Sealer, value: string): AppCookie | null {
  let c = unsealed.get(value)
  if (c === undefined) {
    const fresh = sealer.unseal<AppCookie>(value)
    if (fresh === null) return null
    c = fresh
    unsealed.set(value, c)
  }
  return c
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
  const unsealed = new LRUCache<string, AppCookie>({ max: opts.cacheSize })

  /** The session id in one cookie value, when it was sealed by us for this app's origin. */
  const sessionIdIn = (value: string, app: App): string | null => {
    const c = unsealCached(unsealed, opts.cookieSealer, value)
    return c === null || c.o !== app.origin || typeof c.s !== 'string' ? null : c.s
  }

  /** Cookie values not answered from the cache, from `from` on: each waits for the store. */
  const fromStore = async (req: FastifyRequest, app: App, values: string[], from: number): Promise<void> => {
    for (let i = from; i < values.length; i++) {
      const id = sessionIdIn(values[i] as string, app)
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
      const id = sessionIdIn(values[i] as string, app)
      if (id === null) continue
      const found = opts.sessions.cached(id)
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
