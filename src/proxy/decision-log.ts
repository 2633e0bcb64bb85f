import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics.js'
import type { DecisionSampler } from './decision-samples.js'
import { jsonValue, writeInfoBodySoon } from '../log.js'
import type { Decision, DeviceContext, Identity } from '../context.js'
import type { CompiledApp } from '../authz/index.js'

export interface DecisionLogOptions { log: Logger; metrics: Metrics; sampler?: DecisionSampler }

/**
 * Exactly one line per request, with the SPEC's keys. Written when the response ends, so it
 * carries the final status and duration; websockets are logged when the upgrade is handed on.
 * Only the path is logged, never the query string (it may hold codes or state).
 */
export function logDecision (req: FastifyRequest, status: number, log: Logger, metrics: Metrics, sampler?: DecisionSampler): void {
  const ctx = req.moatless
  if (ctx === null || ctx.logged) return
  ctx.logged = true
  const d = ctx.decision
  const decision = d?.decision ?? (ctx.site === 'auth' || ctx.internal !== null ? 'internal' : 'none')
  const app = ctx.app?.name ?? (ctx.site === 'auth' ? 'authenticate' : null)
  // Kept only to be written: at a level above info the line would be dropped anyway. The same
  // bytes as log.info({ ... }, 'decision'), written without pino's walk and formatted off the
  // request, with the lines around it (writeInfoBodySoon).
  if (log.isLevelEnabled('info')) {
    writeInfoBodySoon(log, {
      id: ctx.id,
      app: ctx.app === null ? ',"app":' + jsonValue(app) : kept(appMembers, ctx.app, appMember, alwaysKept),
      method: methodMember(req.raw.method),
      path: ctx.path,
      user: ctx.identity === null ? NO_USER : kept(userMembers, ctx.identity, userMember, Object.isFrozen),
      device: kept(deviceMemberCache, ctx.device, deviceMembers, Object.isFrozen),
      decision: d === null ? (NO_DECISION[decision] ??= ',"decision":' + jsonValue(decision) + ',"rule":null,"reason":null') : kept(decisionMemberCache, d, decisionMembers, frozenWithReasons),
      status,
      duration: Math.round((performance.now() - ctx.startedAt) * 1000) / 1000
    }, decisionFields, 'decision')
  }
  metrics.requests.inc(app ?? '', decision, status)
  sampler?.add(req)
}

/**
 * What a decision line is formatted from, kept from its request until the line is formatted:
 * the request's own values, and the members that repeat from one request to the next as JSON
 * text, read from their objects when the request is logged. Each of those is formatted once
 * and kept beside the object it comes from when that object cannot change: the app, the user
 * (a frozen identity, shared by a session's or a token's requests), the device (frozen) and the
 * decision with its rule and reason (frozen, as allow rules and public paths share them). A
 * line then costs its request id, path, status and duration, where each field formatted anew
 * cost its escape check and its concatenations: about 2.2 µs a line in the batch against
 * 2.7-3.1 µs, measured in a loaded proxy (NOTES-hot-path.md, twelfth round).
 */
interface DecisionRecord {
  id: string
  app: string
  method: string
  path: string
  user: string
  device: string
  decision: string
  status: number
  duration: number
}

/** The decision line's fields, in the SPEC's order, as pino would write them. */
function decisionFields (r: DecisionRecord): string {
  return ',"request_id":' + jsonValue(r.id) + r.app + r.method + ',"path":' + jsonValue(r.path) + r.user + r.device +
    r.decision + ',"status":' + jsonValue(r.status) + ',"duration":' + jsonValue(r.duration)
}

/**
 * `format(key)`, kept beside `key` once formatted when `keep(key)` says the object cannot change
 * (frozen), so that later lines of the same app, user, device or decision reuse the text.
 */
function kept<K extends object> (cache: WeakMap<K, string>, key: K, format: (key: K) => string, keep: (key: K) => boolean): string {
  let m = cache.get(key)
  if (m === undefined) {
    m = format(key)
    if (keep(key)) cache.set(key, m)
  }
  return m
}

/** A compiled app is frozen (authz/compile.ts) and replaced, not changed, when the rules change. */
const alwaysKept = (): boolean => true
const appMembers = new WeakMap<CompiledApp, string>()
const appMember = (app: CompiledApp): string => ',"app":' + jsonValue(app.name)

/** Node's parser hands out one string per known method, and knows only a few dozen. */
const methodMembers = new Map<string, string>()
function methodMember (method: string | undefined): string {
  if (method === undefined) return ''
  let m = methodMembers.get(method)
  if (m === undefined) {
    m = ',"method":' + jsonValue(method)
    if (methodMembers.size < 64) methodMembers.set(method, m)
  }
  return m
}

const userMembers = new WeakMap<Identity, string>()
const NO_USER = ',"user":null'
const userMember = (identity: Identity): string => ',"user":' + jsonValue(identity.email ?? identity.sub ?? null)

const deviceMemberCache = new WeakMap<DeviceContext, string>()
const deviceMembers = (device: DeviceContext): string => ',"device_id":' + jsonValue(device.id) + ',"device_trust":' + jsonValue(device.trust)

/** A decision's text is kept only when it and its reasons are frozen (frozenDecision in authz/compile.ts). */
const decisionMemberCache = new WeakMap<Decision, string>()
const frozenWithReasons = (d: Decision): boolean => Object.isFrozen(d) && Object.isFrozen(d.reasons)
const NO_DECISION: Record<string, string> = {}
const decisionMembers = (d: Decision): string => ',"decision":' + jsonValue(d.decision) + ',"rule":' + jsonValue(d.rule ?? null) +
  ',"reason":' + jsonValue(d.reasons.length > 0 ? d.reasons.join('; ') : null)

export const decisionLog = fp(async function decisionLog (fastify: FastifyInstance, opts: DecisionLogOptions) {
  fastify.addHook('onResponse', (req, reply, done) => {
    logDecision(req, reply.statusCode, opts.log, opts.metrics, opts.sampler)
    done()
  })
}, { name: 'moatless-decision-log', fastify: '5.x', dependencies: ['moatless-intake'] })
