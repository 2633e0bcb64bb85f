import Fastify, { type FastifyInstance } from 'fastify'
import type { Moatless } from './app.js'

/**
 * The admin listener (never the public one): liveness, readiness (store and IdP discovery
 * reachable) and Prometheus metrics.
 */
export function buildAdmin (m: Moatless): FastifyInstance {
  const admin = Fastify({ logger: false })
  admin.get('/healthz', async () => ({ status: 'ok' }))
  admin.get('/readyz', async (_req, reply) => {
    const store = await m.store.ping()
    const idp = m.idp.ready
    const ok = store && idp
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready', store: store ? 'ok' : 'unreachable', idp: idp ? 'ok' : 'undiscovered' })
  })
  admin.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', m.metrics.registry.contentType).send(await m.metrics.registry.metrics())
  })
  return admin
}
