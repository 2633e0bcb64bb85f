import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import httpProxy from '@fastify/http-proxy'
import type { Logger } from 'pino'
import type { CompiledApp } from '../authz/index.js'
import { addStage } from '../context.js'
import type { Metrics } from '../metrics.js'
import { sendJson, sendPage, requestMeta } from '../pages.js'
import type { AssertionSigner } from './assertion.js'
import { logDecision } from './decision-log.js'
import type { DecisionSampler } from './decision-samples.js'
import type { OpenConnections } from './connections.js'
import { upstreamHeaders } from './headers.js'
import { ALL_COOKIE_NAMES } from '../authn/cookies.js'

export interface ForwardOptions { signer: AssertionSigner; metrics: Metrics; log: Logger; connections: OpenConnections; sampler?: DecisionSampler }

const upstreamHosts = new WeakMap<CompiledApp, string>()
function upstreamHost (app: CompiledApp): string {
  let h = upstreamHosts.get(app)
  if (h === undefined) { h = new URL(app.to).host; upstreamHosts.set(app, h) }
  return h
}

/**
 * What reply-from is given for one app's requests: http-proxy's options with the app's upstream
 * and timeout, made once per app. (http-proxy hands the handler a copy of its options made for
 * each request, to carry `getUpstream`, and V8 gives every such copy a hidden class of its own:
 * each of reply-from's dozen reads from it then missed its inline cache, on every request.)
 */
const replyOptions = new WeakMap<CompiledApp, Record<string, unknown>>()
function replyOptionsFor (app: CompiledApp, options: Record<string, unknown>): Record<string, unknown> {
  let o = replyOptions.get(app)
  if (o === undefined) {
    o = { ...options, getUpstream: () => app.to, timeout: app.config.timeout }
    replyOptions.set(app, o)
  }
  return o
}

/**
 * Stage 5: forward what was allowed. One @fastify/http-proxy for every app (the upstream is
 * picked per request, so a new rule set needs no new routes), undici keep-alive pools per
 * upstream, the app's timeout (504), 502 for an unreachable upstream, websockets proxied
 * after the same decision as any request.
 */
export const forward = fp(async function forward (fastify: FastifyInstance, opts: ForwardOptions) {
  // Sign the assertion after the decision (stages run in registration order) and before the
  // synchronous header rewrite. Anonymous requests to public paths get none.
  addStage(fastify, (req) => {
    const ctx = req.moatless
    const app = ctx.app
    if (app === null || ctx.decision?.decision !== 'allow' || ctx.internal !== null || ctx.identity === null) return
    const assertion = opts.signer.assertionFor(ctx.identity, app.from, ctx.device)
    if (typeof assertion === 'string') ctx.assertion = assertion
    else return assertion.then((jwt) => { ctx.assertion = jwt })
  })

  const headersFor = (req: FastifyRequest): Record<string, string | string[] | undefined> => {
    const ctx = req.moatless
    return upstreamHeaders(req.raw.headers, ctx, upstreamHost(ctx.app as CompiledApp))
  }

  await fastify.register(httpProxy, {
    upstream: '',
    websocket: true,
    disableRequestLogging: true,
    replyOptions: {
      // Never replay a request on our own: the upstream's 503 is the client's to see.
      retryDelay: () => null,
      getUpstream: (req: FastifyRequest) => (req.moatless.app as CompiledApp).to,
      // From the client's headers as Node parsed them, not reply-from's copy (see upstreamHeaders).
      rewriteRequestHeaders: (req: FastifyRequest) => headersFor(req),
      // An app must not set (or clear, or plant for a sibling domain) Moatless's own cookies.
      rewriteHeaders: (headers: Record<string, string | string[] | undefined>) => withoutOurCookies(headers),
      onError: (reply: FastifyReply, { error }: { error: Error & { code?: string; cause?: unknown } }) => upstreamError(reply, error),
      onResponse: (req: FastifyRequest, reply: FastifyReply, res: { stream: NodeJS.ReadableStream } | NodeJS.ReadableStream) => {
        const ctx = req.moatless
        if (ctx.app !== null && ctx.forwardedAt !== 0) opts.metrics.upstreamSeconds.observe(ctx.app.name, (performance.now() - ctx.forwardedAt) / 1000)
        reply.send('stream' in res ? res.stream : res)
      }
    },
    wsClientOptions: {
      rewriteRequestHeaders: (_headers: Record<string, string>, req: FastifyRequest) => {
        logDecision(req, 101, opts.log, opts.metrics, opts.sampler)
        opts.connections.add(req)
        const h = headersFor(req)
        // The ws client sets its own handshake headers.
        for (const n of ['connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'host', 'content-length', 'transfer-encoding']) delete h[n]
        return h
      }
    },
    handler: (req: FastifyRequest, reply: FastifyReply, dest: string, options: Record<string, unknown>) => {
      req.moatless.forwardedAt = performance.now()
      return reply.from(dest, replyOptionsFor(req.moatless.app as CompiledApp, options))
    }
  } as unknown as Parameters<typeof httpProxy>[1])
}, { name: 'moatless-forward', fastify: '5.x', dependencies: ['moatless-authz'] })

function withoutOurCookies (headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const sc = headers['set-cookie']
  if (sc === undefined) return headers
  const lines = Array.isArray(sc) ? sc : [sc]
  const kept = lines.filter((l) => !ALL_COOKIE_NAMES.has(l.slice(0, Math.max(0, l.indexOf('='))).trim().toLowerCase()))
  if (kept.length === lines.length) return headers
  const out = { ...headers }
  if (kept.length === 0) delete out['set-cookie']
  else out['set-cookie'] = kept
  return out
}

function upstreamError (reply: FastifyReply, error: Error & { code?: string; cause?: unknown }): void {
  const cause = error.cause as { code?: string } | undefined
  const timeout = error.code === 'FST_REPLY_FROM_GATEWAY_TIMEOUT' || error.code === 'UND_ERR_CONNECT_TIMEOUT' ||
    cause?.code === 'UND_ERR_HEADERS_TIMEOUT' || cause?.code === 'UND_ERR_BODY_TIMEOUT'
  const status = timeout ? 504 : 502
  const req = reply.request
  req.moatless.decision = req.moatless.decision ?? null
  if (req.moatless.wantsHtml) {
    sendPage(reply, status, timeout ? 'The app did not answer in time' : 'The app cannot be reached',
      `<p>Moatless let your request through, but <b>${req.moatless.app?.name ?? ''}</b> ${timeout ? 'did not answer in time' : 'could not be reached'}.</p>` + requestMeta(req.id))
    return
  }
  sendJson(reply, status, { error: timeout ? 'upstream_timeout' : 'upstream_unreachable', request_id: req.id })
}
