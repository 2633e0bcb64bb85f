import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { Metrics } from '../metrics.js'
import type { DecisionSampler } from './decision-samples.js'
import { writeInfoLineSoon } from '../log.js'

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
  // Built only to be written: at a level above info the line would be dropped anyway. The
  // same bytes as log.info({ ... }, 'decision'), written without pino's walk and formatted off
  // the request, with the lines around it (writeInfoLineSoon).
  if (log.isLevelEnabled('info')) {
    writeInfoLineSoon(log, {
      request_id: ctx.id,
      app,
      method: req.raw.method,
      path: ctx.path,
      user: ctx.identity?.email ?? ctx.identity?.sub ?? null,
      device_id: ctx.device.id,
      device_trust: ctx.device.trust,
      decision,
      rule: d?.rule ?? null,
      reason: d !== null && d.reasons.length > 0 ? d.reasons.join('; ') : null,
      status,
      duration: Math.round((performance.now() - ctx.startedAt) * 1000) / 1000
    }, 'decision')
  }
  metrics.requests.inc(app ?? '', decision, status)
  sampler?.add(req)
}

export const decisionLog = fp(async function decisionLog (fastify: FastifyInstance, opts: DecisionLogOptions) {
  fastify.addHook('onResponse', (req, reply, done) => {
    logDecision(req, reply.statusCode, opts.log, opts.metrics, opts.sampler)
    done()
  })
}, { name: 'moatless-decision-log', fastify: '5.x', dependencies: ['moatless-intake'] })
