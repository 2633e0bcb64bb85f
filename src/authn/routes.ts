import { createHash, randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import * as client from 'openid-client'
import type { Logger } from 'pino'
import type { StateHolder } from '../context.js'
import { escapeHtml, requestMeta, sendPage } from '../pages.js'
import type { Store } from '../store/index.js'
import { clearCookie, cookieNames, cookieValues, setCookie } from './cookies.js'
import { errText, type Idp } from './oidc.js'
import { parseReturnTo } from './return-to.js'
import { groupsOf, stripProtocolClaims } from './refresh.js'
import type { Sealer } from './seal.js'
import type { AppCookie } from './session-stage.js'
import type { Sessions } from './sessions.js'

export interface SignInOptions {
  state: StateHolder
  store: Store
  sessions: Sessions
  idp: Idp
  cookieSealer: Sealer
  tokenSealer: Sealer
  log: Logger
}

/** A pending sign-in, stored single-use under its `state`. */
interface LoginTransaction { v: string; n: string; rd: string | null; b: string }
/** A handoff code's value: session, the one origin it is valid for, where to return. */
interface Handoff { s: string; o: string; p: string }
/** The login-binding cookie: ties a pending sign-in to this browser (login CSRF). */
interface Binding { b: string }
export interface StoredTokens { id_token?: string; access_token?: string; refresh_token?: string }

const LOGIN_TTL_MS = 10 * 60_000
const HANDOFF_TTL_MS = 60_000

const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64url')
const randomCode = (): string => randomBytes(32).toString('base64url')

/**
 * The sign-in flow (SPEC "Request handling"): authorization code + PKCE + state + nonce at
 * the authenticate origin, then a single-use handoff code that lets the app origin set its
 * own host-only cookie.
 */
export const signInRoutes = fp(async function signInRoutes (fastify: FastifyInstance, opts: SignInOptions) {
  const cfg = () => opts.state.current.config
  const authUrl = () => cfg().authenticate.url
  const authSecure = () => authUrl().startsWith('https:')
  const auth = { moatless: { internal: 'auth' as const } }
  const app = { moatless: { internal: 'app' as const } }
  const any = { moatless: { internal: 'any' as const } }

  const failed = (req: FastifyRequest, reply: FastifyReply, why: string, status = 400): FastifyReply => {
    req.moatless.decision = { decision: 'deny', rule: 'sign-in-failed', reasons: [why] }
    return sendPage(reply, status, 'Sign-in failed', `<p>${escapeHtml(why)}</p><p>Go back to the app you were using and try again.</p>` + requestMeta(req.id))
  }

  /** The session behind this origin's cookie, if any (auth origin or app origin). */
  const currentSession = async (req: FastifyRequest, origin: string): Promise<{ id: string; created_at: number } | 'unavailable' | null> => {
    const name = cookieNames(origin.startsWith('https:')).session
    for (const v of cookieValues(req.headers.cookie, name)) {
      const c = opts.cookieSealer.unseal<AppCookie>(v)
      if (c === null || c.o !== origin) continue
      const found = await opts.sessions.lookup(c.s)
      if (found.status === 'unavailable') return 'unavailable'
      if (found.status === 'ok') return { id: found.record.id, created_at: found.record.created_at }
    }
    return null
  }

  const putHandoff = async (code: string, sessionId: string, rd: { origin: string; path: string }): Promise<void> => {
    await opts.store.putOnce('handoff', code, JSON.stringify({ s: sessionId, o: rd.origin, p: rd.path } satisfies Handoff), HANDOFF_TTL_MS)
  }
  const redirectToHandoff = (reply: FastifyReply, code: string, rd: { origin: string; path: string }): FastifyReply =>
    reply.code(302).headers({ location: `${rd.origin}/.moatless/handoff?code=${code}`, 'cache-control': 'no-store' }).send()
  const handoffTo = async (reply: FastifyReply, sessionId: string, rd: { origin: string; path: string }): Promise<FastifyReply> => {
    const code = randomCode()
    await putHandoff(code, sessionId, rd)
    return redirectToHandoff(reply, code, rd)
  }

  fastify.get('/.moatless/sign_in', { config: auth }, async (req, reply) => {
    const query = req.query as Record<string, unknown>
    let rd: { origin: string; path: string } | null = null
    if (query.rd !== undefined) {
      rd = parseReturnTo(query.rd, opts.state.current.appOrigins)
      if (rd === null) return failed(req, reply, 'The return address is not one of the applications Moatless protects.')
    }
    const authOrigin = new URL(authUrl()).origin
    const existing = await currentSession(req, authOrigin)
    if (existing === 'unavailable') return failed(req, reply, 'The session store is unavailable; try again shortly.', 503)
    // A sensitive app (session_max_age) needs a sign-in younger than that: re-authenticate at the IdP.
    const maxAge = rd === null ? undefined : opts.state.current.ruleset.apps.find((a) => a.origin === rd?.origin)?.config.session_max_age
    const tooOld = existing !== null && maxAge !== undefined && Date.now() - existing.created_at > maxAge
    if (existing !== null && rd !== null && !tooOld) return await handoffTo(reply, existing.id, rd)

    const names = cookieNames(authSecure())
    let binding = cookieValues(req.headers.cookie, names.login).map((v) => opts.cookieSealer.unseal<Binding>(v)).find((b) => b !== null && typeof b.b === 'string')?.b
    if (binding === undefined) {
      binding = randomCode()
      reply.header('set-cookie', setCookie(names.login, opts.cookieSealer.seal({ b: binding } satisfies Binding), { secure: authSecure(), maxAgeSec: LOGIN_TTL_MS / 1000 }))
    }
    const state = client.randomState()
    const nonce = client.randomNonce()
    const verifier = client.randomPKCECodeVerifier()
    let location: string
    try {
      location = await opts.idp.authorizationUrl({ state, nonce, codeVerifier: verifier, maxAgeSec: maxAge === undefined ? undefined : Math.floor(maxAge / 1000) })
    } catch {
      return failed(req, reply, 'The identity provider cannot be reached right now; try again shortly.', 503)
    }
    const txn: LoginTransaction = { v: verifier, n: nonce, rd: rd === null ? null : rd.origin + rd.path, b: sha256(binding) }
    await opts.store.putOnce('login', state, JSON.stringify(txn), LOGIN_TTL_MS)
    return reply.code(302).headers({ location, 'cache-control': 'no-store' }).send()
  })

  fastify.get('/.moatless/callback', { config: auth }, async (req, reply) => {
    const query = req.query as Record<string, unknown>
    if (typeof query.error === 'string') {
      return failed(req, reply, `The identity provider refused the sign-in (${query.error.slice(0, 100)}).`)
    }
    if (typeof query.state !== 'string' || typeof query.code !== 'string') return failed(req, reply, 'The sign-in response is incomplete.')
    const stored = await opts.store.takeOnce('login', query.state).catch(() => 'unavailable' as const)
    if (stored === 'unavailable') return failed(req, reply, 'The session store is unavailable; try again shortly.', 503)
    if (stored === null) return failed(req, reply, 'This sign-in has expired or was already used.')
    const txn = JSON.parse(stored) as LoginTransaction
    const names = cookieNames(authSecure())
    const bound = cookieValues(req.headers.cookie, names.login)
      .map((v) => opts.cookieSealer.unseal<Binding>(v))
      .some((b) => b !== null && typeof b.b === 'string' && sha256(b.b) === txn.b)
    if (!bound) return failed(req, reply, 'This sign-in was started in another browser.')

    const search = req.raw.url?.includes('?') === true ? req.raw.url.slice(req.raw.url.indexOf('?')) : ''
    let tokens: Awaited<ReturnType<Idp['redeem']>>
    try {
      tokens = await opts.idp.redeem(search, { state: query.state, nonce: txn.n, codeVerifier: txn.v })
    } catch (err) {
      opts.log.warn({ request_id: req.id, err: errText(err) }, 'sign-in: code redemption failed')
      return failed(req, reply, 'The identity provider\'s answer could not be verified.')
    }
    const claims = tokens.claims()
    if (claims === undefined) return failed(req, reply, 'The identity provider returned no ID token.')
    const idp = cfg().idp
    let groups = groupsOf(claims[idp.groups_claim])
    let email = typeof claims.email === 'string' ? claims.email : undefined
    let emailVerified = claims.email_verified === true
    if ((claims[idp.groups_claim] === undefined || email === undefined) && tokens.access_token !== undefined && opts.idp.metadata()?.userinfo_endpoint !== undefined) {
      try {
        const info = await opts.idp.userinfo(tokens.access_token, claims.sub)
        if (claims[idp.groups_claim] === undefined) groups = groupsOf(info[idp.groups_claim])
        if (email === undefined && typeof info.email === 'string') { email = info.email; emailVerified = info.email_verified === true }
      } catch (err) {
        opts.log.warn({ request_id: req.id, err: errText(err) }, 'sign-in: userinfo failed')
      }
    }
    const keptClaims = stripProtocolClaims(claims)
    const stash: StoredTokens = { id_token: tokens.id_token, access_token: tokens.access_token, refresh_token: tokens.refresh_token }
    const session = opts.sessions.prepare({
      sub: claims.sub,
      email,
      email_verified: emailVerified,
      name: typeof claims.name === 'string' ? claims.name : undefined,
      groups,
      claims: keptClaims,
      tokens: opts.tokenSealer.seal(stash)
    })
    const rd = txn.rd === null ? null : parseReturnTo(txn.rd, opts.state.current.appOrigins)
    // The session and its handoff code are written side by side (one round trip, not two). A
    // code whose session failed to save leads nowhere: the handoff finds no session.
    const handoff = rd === null ? null : { code: randomCode(), rd }
    try {
      await Promise.all([
        opts.sessions.save(session),
        handoff === null ? null : putHandoff(handoff.code, session.id, handoff.rd)
      ])
    } catch {
      return failed(req, reply, 'The session store is unavailable; try again shortly.', 503)
    }
    const authOrigin = new URL(authUrl()).origin
    const lifetimeSec = (session.expires_at - session.created_at) / 1000
    reply.header('set-cookie', [
      setCookie(names.session, opts.cookieSealer.seal({ s: session.id, o: authOrigin } satisfies AppCookie), { secure: authSecure(), maxAgeSec: lifetimeSec }),
      clearCookie(names.login, authSecure())
    ])
    req.moatless.identity = { sub: session.sub, email: session.email, groups: session.groups, claims: {}, via: 'session' }
    if (handoff !== null) return redirectToHandoff(reply, handoff.code, handoff.rd)
    return sendPage(reply, 200, 'Signed in', `<p>You are signed in as <b>${escapeHtml(session.email ?? session.sub)}</b>. You can now open the applications Moatless protects.</p>`)
  })

  fastify.get('/.moatless/handoff', { config: app }, async (req, reply) => {
    const target = req.moatless.app
    const code = (req.query as Record<string, unknown>).code
    if (target === null || typeof code !== 'string' || code.length > 200) return failed(req, reply, 'This sign-in link is not valid.')
    const stored = await opts.store.takeOnce('handoff', code).catch(() => 'unavailable' as const)
    if (stored === 'unavailable') return failed(req, reply, 'The session store is unavailable; try again shortly.', 503)
    if (stored === null) return failed(req, reply, 'This sign-in link has expired or was already used.')
    const h = JSON.parse(stored) as Handoff
    if (h.o !== target.origin) return failed(req, reply, 'This sign-in link was issued for another application.')
    const found = await opts.sessions.lookup(h.s)
    if (found.status === 'unavailable') return failed(req, reply, 'The session store is unavailable; try again shortly.', 503)
    if (found.status !== 'ok') return failed(req, reply, 'Your session has ended; sign in again.')
    const secure = target.origin.startsWith('https:')
    const lifetimeSec = (found.record.expires_at - Date.now()) / 1000
    reply.header('set-cookie', setCookie(cookieNames(secure).session, opts.cookieSealer.seal({ s: h.s, o: target.origin } satisfies AppCookie), { secure, maxAgeSec: lifetimeSec }))
    req.moatless.identity = found.identity
    return reply.code(302).headers({ location: target.origin + (h.p.startsWith('/') ? h.p : '/'), 'cache-control': 'no-store' }).send()
  })

  fastify.get('/.moatless/sign_out', { config: any }, async (req, reply) => {
    const origin = req.moatless.site === 'auth' ? new URL(authUrl()).origin : (req.moatless.app?.origin ?? '')
    const secure = origin.startsWith('https:')
    let idToken: string | undefined
    const current = await currentSession(req, origin)
    if (current === 'unavailable') return failed(req, reply, 'The session store is unavailable; your session could not be ended. Try again shortly.', 503)
    if (current !== null) {
      const found = await opts.sessions.lookup(current.id)
      if (found.status === 'ok') {
        req.moatless.identity = found.identity
        idToken = opts.tokenSealer.unseal<StoredTokens>(found.record.tokens)?.id_token
      }
      try {
        await opts.sessions.revoke(current.id)
      } catch {
        return failed(req, reply, 'The session store is unavailable; your session could not be ended. Try again shortly.', 503)
      }
    }
    reply.header('set-cookie', clearCookie(cookieNames(secure).session, secure))
    const location = opts.idp.endSessionUrl(idToken) ?? `${authUrl()}/.moatless/signed_out`
    return reply.code(302).headers({ location, 'cache-control': 'no-store' }).send()
  })

  fastify.get('/.moatless/signed_out', { config: auth }, async (_req, reply) => {
    reply.header('set-cookie', clearCookie(cookieNames(authSecure()).session, authSecure()))
    return sendPage(reply, 200, 'Signed out', '<p>You have signed out of every application behind Moatless. Close this tab, or open an application to sign in again.</p>')
  })

  // Anything else under /.moatless/ is ours and unknown: 404, never forwarded.
  fastify.all('/.moatless/*', { config: any }, async (req, reply) => {
    req.moatless.decision = { decision: 'deny', rule: 'not-found', reasons: [] }
    return sendPage(reply, 404, 'Not found', '<p>There is nothing here.</p>')
  })
}, { name: 'moatless-sign-in', fastify: '5.x', dependencies: ['moatless-intake'] })

