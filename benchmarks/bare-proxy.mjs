// The baseline: fastify + @fastify/http-proxy with no authentication at all.
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'
const app = Fastify({ logger: false })
await app.register(proxy, { upstream: process.env.UPSTREAM })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.send?.({ port: app.server.address().port })
