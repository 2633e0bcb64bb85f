import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { addStage, type DeviceContext } from '../context.js'
import type { Metrics } from '../metrics.js'
import { escapeHtml, list, requestMeta, sendJson, sendPage } from '../pages.js'
import { evaluate } from './evaluate.js'

export interface AuthorizeOptions {
  /** authenticate.url, for the sign-in redirect. */
  authenticateUrl: string
  metrics: Metrics
}

/**
 * Stage 4: may this request pass? Evaluates the app's compiled rules on the normalized
 * request and answers everything that is not an allow: 302/401 without identity, 403 with
 * the failed requirements, 503 when the decision cannot be made (never fail open).
 */
export const authorizeStage = fp(async function authorizeStage (fastify: FastifyInstance, opts: AuthorizeOptions) {
  const signIn = `${opts.authenticateUrl}/.moatless/sign_in?rd=`

  addStage(fastify, (req, reply) => {
    const ctx = req.moatless
    const app = ctx.app
    if (ctx.site !== 'app' || app === null || ctx.internal !== null) return
    if (ctx.unavailable) {
      ctx.decision ??= { decision: 'deny', rule: 'undecidable', reasons: ['the decision cannot be made right now'] }
      return unavailable(req, reply)
    }
    // authn marks a rejected bearer token this way (ctx.identity stays null).
    const invalidToken = ctx.decision?.rule === 'invalid-token' ? ctx.decision : null
    const d = evaluate(app, { identity: ctx.identity, device: ctx.device, method: req.raw.method ?? 'GET', path: ctx.path, sourceIp: ctx.clientIp })
    ctx.decision = d
    opts.metrics.decisionSeconds.observe(d.decision, (performance.now() - ctx.startedAt) / 1000)
    if (d.decision === 'allow') {
      if (ctx.websocket && !app.config.websockets) {
        ctx.decision = { decision: 'deny', rule: 'websockets-disabled', reasons: ['websockets are not enabled for this app'] }
        return forbidden(req, reply)
      }
      return
    }
    if (d.decision === 'unauthenticated') {
      // RFC 6750 3.1: a presented token that fails is answered 401 invalid_token, browsers
      // included (a sign-in redirect cannot fix an API client's token). Public paths still
      // pass: the header may be meant for the app itself.
      if (invalidToken !== null) {
        ctx.decision = invalidToken
        return sendJson(reply.header('www-authenticate', 'Bearer error="invalid_token"'), 401, { error: 'invalid_token', request_id: req.id })
      }
      if (ctx.wantsHtml) {
        return reply.code(302).headers({ location: signIn + encodeURIComponent(app.origin + ctx.path + ctx.search), 'cache-control': 'no-store' }).send()
      }
      return sendJson(reply.header('www-authenticate', 'Bearer'), 401, { error: 'unauthenticated', request_id: req.id })
    }
    return forbidden(req, reply)
  })
}, { name: 'moatless-authz', fastify: '5.x', dependencies: ['moatless-device-trust'] })

function forbidden (req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const ctx = req.moatless
  const d = ctx.decision
  const rule = d?.rule ?? 'default-deny'
  if (!ctx.wantsHtml) return sendJson(reply, 403, { error: 'forbidden', rule, request_id: req.id })
  const who = ctx.identity?.email ?? ctx.identity?.sub ?? 'unknown user'
  const reasons = d?.reasons ?? []
  const body = `<p>You are signed in as <b>${escapeHtml(who)}</b>, but <b>${escapeHtml(ctx.app?.name ?? '')}</b> does not let this request through.</p>` +
    deviceAdvice(reasons, ctx.device) +
    `<p>Decided by rule <code>${escapeHtml(rule)}</code>.${reasons.length === 0 ? '' : rule === 'default-deny' ? ' No rule lets this request through; what each one needs:' : ' Why:'}</p>` +
    (reasons.length > 0 ? list(reasons) : '') +
    `<p>Device: ${escapeHtml(ctx.device.id ?? 'not identified')} (trust level <code>${escapeHtml(ctx.device.trust)}</code>).</p>` +
    '<p><a class="button" href="/.moatless/sign_out">Sign out</a></p>' + requestMeta(req.id)
  return sendPage(reply, 403, 'Access denied', body)
}

const NEEDS_LEVEL = /: device-(?:unauthorized|unauthenticated): needs a device at level ([a-z0-9_-]+);/

/**
 * When a rule wanted a better device: what it needs, what this device lacks, and what to do
 * next, in plain words. Of several levels wanted, the lowest (the easiest to reach).
 */
function deviceAdvice (reasons: readonly string[], device: DeviceContext): string {
  const wanted = new Set<string>()
  for (const r of reasons) {
    const m = NEEDS_LEVEL.exec(r)
    if (m !== null) wanted.add(m[1] as string)
  }
  if (wanted.size === 0) return ''
  const order = Object.keys(device.shortfalls ?? {})
  const level = [...wanted].sort((a, b) => rank(order, a) - rank(order, b))[0] as string
  const lacks = device.shortfalls?.[level] ?? []
  const needs = `This app needs a device at level <b>${escapeHtml(level)}</b>`
  if (device.id === null && lacks.length === 0) {
    return `<p>${needs}; no device was identified.</p>` +
      '<p>What to do: use an enrolled device, with its client certificate installed in this browser or the Moatless device agent running on it. ' +
      'A new device is enrolled by IT (<code>moatless devices enroll</code>).</p>'
  }
  const state = device.id === null || device.trustRank === 0 ? 'this device is not trusted' : `this device is <b>${escapeHtml(device.trust)}</b>`
  const what = lacks.length > 0 ? `: ${lacks.map((l) => escapeHtml(l.reason)).join(', ')}` : ''
  const remedies = [...new Set(lacks.map((l) => l.remedy))]
  return `<p>${needs}; ${state}${what}.</p>` +
    (remedies.length === 0 ? '' : `<p>What to do:</p><ul>${remedies.map((r) => `<li>${withCode(r)}</li>`).join('')}</ul>`)
}

function rank (order: string[], level: string): number {
  const i = order.indexOf(level)
  return i === -1 ? Number.MAX_SAFE_INTEGER : i
}

/** Escapes, then shows `command` spans as code. */
function withCode (text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>')
}

function unavailable (req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header('retry-after', '5')
  if (req.moatless.wantsHtml) {
    return sendPage(reply, 503, 'Temporarily unavailable', '<p>Moatless cannot verify who you are right now, so it refuses the request rather than guess. Try again in a few seconds.</p>' + requestMeta(req.id))
  }
  return sendJson(reply, 503, { error: 'unavailable', request_id: req.id })
}
