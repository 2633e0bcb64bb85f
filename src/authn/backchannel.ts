import type { FastifyInstance } from 'fastify'
import { jwtVerify } from 'jose'
import type { Logger } from 'pino'
import { sendJson } from '../pages.js'
import type { Store } from '../store/index.js'
import { errText, type Idp } from './oidc.js'

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/**
 * OIDC Back-Channel Logout 1.0: the IdP tells us a user (`sub`) or one IdP session (`sid`)
 * signed out; we end the matching sessions on every replica. The logout token is verified
 * like an ID token (IdP keys, issuer, audience) plus the logout-specific checks, and each
 * `jti` is accepted once.
 */
export async function backchannelLogout (fastify: FastifyInstance, opts: { idp: Idp; store: Store; log: Logger; revoke: (ids: string[]) => Promise<void> }): Promise<void> {
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  fastify.post('/.moatless/backchannel_logout', { config: { moatless: { internal: 'auth' } } }, async (req, reply) => {
    const token = (req.body as Record<string, unknown> | undefined)?.logout_token
    const bad = (why: string) => {
      req.moatless.decision = { decision: 'deny', rule: 'backchannel-logout', reasons: [why] }
      return sendJson(reply, 400, { error: 'invalid_request', error_description: why })
    }
    if (typeof token !== 'string' || token.length > 8192) return bad('logout_token missing')
    let payload: Record<string, unknown>
    try {
      const verified = await jwtVerify(token, await opts.idp.jwks(), {
        issuer: opts.idp.issuer,
        audience: opts.idp.clientId,
        algorithms: opts.idp.signingAlgs(),
        requiredClaims: ['iat', 'jti', 'events'],
        maxTokenAge: '5m',
        clockTolerance: 30
      })
      payload = verified.payload as Record<string, unknown>
    } catch (err) {
      opts.log.warn({ err: errText(err) }, 'back-channel logout: token rejected')
      return bad('logout_token invalid')
    }
    const events = payload.events as Record<string, unknown> | undefined
    if (events === null || typeof events !== 'object' || !(LOGOUT_EVENT in events)) return bad('not a logout token')
    if ('nonce' in payload) return bad('logout token must not carry a nonce')
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined
    if (sub === undefined && sid === undefined) return bad('logout token names neither sub nor sid')
    if (!await opts.store.acquireLease(`bcl-jti:${String(payload.jti)}`, 'seen', 10 * 60_000)) return bad('logout token replayed')

    const candidates = sub !== undefined ? await opts.store.listSessions({ user: sub }) : await opts.store.listSessions()
    const ids = candidates
      // With both: that IdP session, or (where we never learned the sid) every session of the user.
      .filter((s) => sub === undefined ? s.claims.sid === sid : s.sub === sub && (sid === undefined || s.claims.sid === undefined || s.claims.sid === sid))
      .map((s) => s.id)
    if (ids.length > 0) await opts.revoke(ids)
    opts.log.info({ user: sub ?? null, sessions: ids.length }, 'back-channel logout: sessions ended')
    return reply.code(200).header('cache-control', 'no-store').send()
  })
}
