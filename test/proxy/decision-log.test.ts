/**
 * The decision line (src/proxy/decision-log.ts) is formatted from members kept beside the
 * objects they come from (app, frozen identity, frozen device, frozen decision). Whatever is
 * kept, each line must be the bytes pino writes for the same fields, and an object that is not
 * frozen must be read anew on every line.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { createLogger } from '../../src/log.js'
import { Metrics } from '../../src/metrics.js'
import { logDecision } from '../../src/proxy/decision-log.js'
import type { Decision, DeviceContext, Identity } from '../../src/context.js'

function capture (): { text: () => string; stream: Writable } {
  let text = ''
  const stream = new Writable({ write (chunk, _enc, cb) { text += String(chunk); cb() } })
  return { stream, text: () => text }
}

interface Case {
  site?: 'app' | 'auth'
  internal?: 'auth' | 'app' | 'any' | null
  app?: { name: string } | null
  method?: string
  path?: string
  identity?: Identity | null
  device?: DeviceContext
  decision?: Decision | null
  status?: number
}

const frozenIdentity = (sub: string, email?: string): Identity => Object.freeze({ sub, ...(email === undefined ? {} : { email }), groups: Object.freeze([]) as unknown as string[], claims: {}, via: 'session' as const })
const NO_DEVICE: DeviceContext = Object.freeze({ id: null, trust: 'none', trustRank: 0, reasons: [] })
const ANN = frozenIdentity('u1', 'ann@example.com')
const allowStaff: Decision = Object.freeze({ decision: 'allow' as const, rule: 'staff', reasons: Object.freeze([]) as unknown as string[] })

function requestFor (c: Case, n: number): FastifyRequest {
  return {
    raw: { method: 'method' in c ? c.method : 'GET' },
    moatless: {
      id: `req-${n}`,
      site: c.site ?? 'app',
      internal: c.internal ?? null,
      app: c.app === undefined ? { name: 'wiki' } : c.app,
      path: c.path ?? '/page',
      identity: c.identity === undefined ? ANN : c.identity,
      device: c.device ?? NO_DEVICE,
      decision: c.decision === undefined ? allowStaff : c.decision,
      logged: false,
      startedAt: performance.now()
    }
  } as unknown as FastifyRequest
}

/** The fields as decision-log.ts's comment promises them: what log.info({ ... }, 'decision') would get. */
function fieldsFor (c: Case, n: number): Record<string, unknown> {
  const req = requestFor(c, n)
  const ctx = req.moatless
  const d = ctx.decision
  return {
    request_id: ctx.id,
    app: ctx.app?.name ?? (ctx.site === 'auth' ? 'authenticate' : null),
    method: 'method' in c ? c.method : 'GET',
    path: ctx.path,
    user: ctx.identity?.email ?? ctx.identity?.sub ?? null,
    device_id: ctx.device.id,
    device_trust: ctx.device.trust,
    decision: d?.decision ?? (ctx.site === 'auth' || ctx.internal !== null ? 'internal' : 'none'),
    rule: d?.rule ?? null,
    reason: d !== null && d.reasons.length > 0 ? d.reasons.join('; ') : null,
    status: c.status ?? 200,
    duration: 0
  }
}

t.test('every decision line is the line pino writes for its fields, cached members or not', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.stream })
  const metrics = new Metrics()
  const laptop: DeviceContext = Object.freeze({ id: 'dev-"1"', trust: 'managed', trustRank: 2, reasons: [] })
  const sharedApp = { name: 'wiki' }
  const cases: Case[] = [
    {},
    { app: sharedApp, device: laptop },
    { app: sharedApp, device: laptop, method: 'POST', path: '/a b/"quoted"\\back\n\u0000/é/日本/\ud800', status: 201 },
    { identity: frozenIdentity('sub-only'), status: 204 },
    { identity: null, decision: { decision: 'unauthenticated', rule: 'authentication-required', reasons: ['user-unauthenticated: needs a signed-in user'] }, status: 302 },
    { decision: { decision: 'deny', rule: 'default-deny', reasons: ['staff: group-missing: needs "staff"', 'ops: device\ttrust\u2028'] }, status: 403 },
    { site: 'auth', app: null, decision: null, method: 'GET', path: '/.moatless/callback' },
    { internal: 'any', decision: null, path: '/.moatless/health' },
    { app: null, decision: null, identity: null, status: 404 },
    { app: { name: 'näme "with" \\ quotes' }, method: 'DELETE', device: { id: 'mutable', trust: 'basic', trustRank: 1, reasons: [] } },
    { method: undefined, status: 400 },
    { decision: Object.freeze({ decision: 'allow' as const, rule: 'public-path', reasons: Object.freeze([]) as unknown as string[] }), identity: null }
  ]
  // Twice over: the second time every cacheable member comes from its cache.
  const all = [...cases, ...cases]
  all.forEach((c, n) => {
    log.info(fieldsFor(c, n), 'decision')
    logDecision(requestFor(c, n), c.status ?? 200, log, metrics)
  })
  await new Promise((resolve) => setImmediate(resolve))
  const lines = out.text().split('\n').filter((l) => l !== '')
  t.equal(lines.length, all.length * 2)
  const plain = (l: string): string => l.replace(/"time":"[^"]*"/, '"time":""').replace(/"duration":[^,}]*/, '"duration":0')
  for (let i = 0; i < lines.length; i += 2) t.equal(plain(lines[i + 1] as string), plain(lines[i] as string), `case ${(i / 2) % cases.length}, pass ${Math.floor(i / 2 / cases.length) + 1}`)
  const first = JSON.parse(lines[1] as string) as Record<string, unknown>
  t.ok(typeof first.duration === 'number' && first.duration >= 0, 'the duration is measured')
})

t.test('objects that are not frozen are read anew on every line', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.stream })
  const metrics = new Metrics()
  const identity = { sub: 'u', email: 'before@example.com', groups: [], claims: {}, via: 'session' } as Identity
  const device: DeviceContext = { id: 'd-1', trust: 'basic', trustRank: 1, reasons: [] }
  const decision: Decision = { decision: 'deny', rule: 'r-1', reasons: ['first'] }
  logDecision(requestFor({ identity, device, decision }, 1), 403, log, metrics)
  identity.email = 'after@example.com'
  device.trust = 'managed'
  decision.rule = 'r-2'
  decision.reasons.push('second')
  logDecision(requestFor({ identity, device, decision }, 2), 403, log, metrics)
  await new Promise((resolve) => setImmediate(resolve))
  const [a, b] = out.text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.match(a, { user: 'before@example.com', device_trust: 'basic', rule: 'r-1', reason: 'first' })
  t.match(b, { user: 'after@example.com', device_trust: 'managed', rule: 'r-2', reason: 'first; second' })
})

t.test('a request is logged once', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.stream })
  const req = requestFor({}, 1)
  logDecision(req, 200, log, new Metrics())
  logDecision(req, 200, log, new Metrics())
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(out.text().split('\n').filter((l) => l !== '').length, 1)
})
