// The baseline: fastify + @fastify/http-proxy with no authentication at all.
// With TLS_CERT/TLS_KEY (file paths) it listens over TLS; with TLS_CLIENT_CA too it asks for
// (never requires) client certificates, exactly like Moatless's `listen.tls.client_ca`, so the
// TLS baseline pays the same handshake and certificate cost as Moatless on device identity.
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'
const { TLS_CERT, TLS_KEY, TLS_CLIENT_CA } = process.env
const https = TLS_CERT === undefined
  ? undefined
  : {
      cert: readFileSync(TLS_CERT),
      key: readFileSync(TLS_KEY),
      ...(TLS_CLIENT_CA === undefined ? {} : { ca: readFileSync(TLS_CLIENT_CA), requestCert: true, rejectUnauthorized: false })
    }
const app = Fastify({ logger: false, ...(https === undefined ? {} : { https }) })
await app.register(proxy, { upstream: process.env.UPSTREAM })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.send?.({ port: app.server.address().port })
