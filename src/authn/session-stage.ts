import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Sealer } from './seal.js'
import type { Sessions } from './sessions.js'
import { cookieNames, cookieValues } from './cookies.js'

/** What an app-origin session cookie holds (sealed). */
export interface AppCookie { s: string; o: string }

export interface SessionStageOptions {
  sessions: Sessions
  cookieSealer: Sealer
}

/**
 * Stage 2: who the user is. Reads the app origin's own session cookie (sealed, bound to that
 * origin) and resolves the server-side session. A tampered, foreign, expired or revoked cookie
 * is simply no session. When the store cannot answer, the request is marked undecidable.
 */
export const sessionStage = fp(async function sessionStage (fastify: FastifyInstance, opts: SessionStageOptions) {
  fastify.addHook('onRequest', async (req) => {
    const ctx = req.moatless
    const app = ctx.app
    if (ctx.site !== 'app' || app === null || req.routeOptions.config.moatless !== undefined) return
    const name = cookieNames(app.origin.startsWith('https:')).session
    const values = cookieValues(req.headers.cookie, name)
    for (const v of values) {
      const c = opts.cookieSealer.unseal<AppCookie>(v)
      if (c === null || c.o !== app.origin || typeof c.s !== 'string') continue
      const found = await opts.sessions.lookup(c.s)
      if (found.status === 'unavailable') { ctx.unavailable = true; return }
      if (found.status !== 'ok') continue
      const maxAge = app.config.session_max_age
      if (maxAge !== undefined && Date.now() - found.record.created_at > maxAge) continue
      ctx.identity = found.identity
      return
    }
  })
}, { name: 'moatless-authn', fastify: '5.x', dependencies: ['moatless-intake'] })
