import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import { bearerCredential, type BearerResult, type BearerVerifier } from './bearer.js'
import type { Sealer } from './seal.js'
import type { Sessions } from './sessions.js'
import { cookieNames, cookieValues } from './cookies.js'

/** What an app-origin session cookie holds (sealed). */
export interface AppCookie { s: string; o: string }

export interface SessionStageOptions {
  sessions: Sessions
  cookieSealer: Sealer
  /** Verifies `Authorization: Bearer <JWT>` for API clients; absent, only cookies count. */
  bearer?: BearerVerifier
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
 */
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

export const sessionStage = fp(async function sessionStage (fastify: FastifyInstance, opts: SessionStageOptions) {
  // One cache per sealer (per secret): a value is only ever trusted by the key that sealed it.
  const unsealed = new LRUCache<string, AppCookie>({ max: 100_000 })
  fastify.addHook('onRequest', async (req) => {
    const ctx = req.moatless
    const app = ctx.app
    if (ctx.site !== 'app' || app === null || req.routeOptions.config.moatless !== undefined) return
    const name = cookieNames(app.origin.startsWith('https:')).session
    const values = cookieValues(req.headers.cookie, name)
    for (const v of values) {
      const c = unsealCached(unsealed, opts.cookieSealer, v)
      if (c === null || c.o !== app.origin || typeof c.s !== 'string') continue
      const found = await opts.sessions.lookup(c.s)
      if (found.status === 'unavailable') {
        ctx.unavailable = true
        ctx.decision = { decision: 'deny', rule: 'store-unavailable', reasons: ['the session store cannot be reached'] }
        return
      }
      if (found.status !== 'ok') continue
      const maxAge = app.config.session_max_age
      if (maxAge !== undefined && Date.now() - found.record.created_at > maxAge) continue
      ctx.identity = found.identity
      return
    }
    // Nothing to do (and nothing to scan) for the common request without the header.
    if (opts.bearer !== undefined && req.headers.authorization !== undefined) await fromBearer(req, opts.bearer)
  })
}, { name: 'moatless-authn', fastify: '5.x', dependencies: ['moatless-intake'] })

async function fromBearer (req: FastifyRequest, bearer: BearerVerifier): Promise<void> {
  const ctx = req.moatless
  const credential = bearerCredential(req.raw.rawHeaders)
  if (credential.kind === 'none') return
  const result: BearerResult = credential.kind === 'token'
    ? await bearer.verify(credential.token)
    : { status: 'invalid', reason: credential.reason }
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
