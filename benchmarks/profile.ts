/**
 * Profiles the hot path: one in-process Moatless (memory store, a signed-in session) in front
 * of a local origin, loaded by autocannon for a few seconds. Run with
 *   node --cpu-prof --cpu-prof-dir=benchmarks/results/profiles --import tsx benchmarks/profile.ts
 * and open the .cpuprofile in Chrome DevTools (or summarize it with benchmarks/top.ts).
 */
import { createServer } from 'node:http'
import { Writable } from 'node:stream'
import autocannon from 'autocannon'
import { stringify } from 'yaml'
import { build } from '../src/app.js'
import { Sealer } from '../src/authn/seal.js'
import { loadConfigText } from '../src/config/index.js'
import { createLogger } from '../src/log.js'
import { MemoryStore } from '../src/store/index.js'

const body = Buffer.alloc(1024, 'x')
const origin = createServer((_req, res) => { res.writeHead(200, { 'content-length': body.length }); res.end(body) })
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', () => resolve()))
const upstream = `http://127.0.0.1:${(origin.address() as { port: number }).port}`
const port = 18_080 + Math.floor(Math.random() * 1000)
const secret = 'profile-session-secret-0123456789abcdef-0123456789'
const loaded = loadConfigText(stringify({
  listen: { address: '127.0.0.1', port },
  authenticate: { url: `http://auth.localhost:${port}` },
  idp: { issuer: 'http://127.0.0.1:1', client_id: 'x', client_secret: 'y' },
  session: { secret },
  apps: [{ name: 'wiki', from: `http://wiki.localhost:${port}`, to: upstream, identity_headers: true, rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] }]
}), 'profile.yaml', {})
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors))
const store = new MemoryStore()
const quiet = new Writable({ write (_c, _e, cb) { cb() } })
const m = await build({ config: loaded.loaded.config, store, logger: createLogger({ destination: quiet }) })
await m.app.listen({ host: '127.0.0.1', port })
const s = await m.sessions.create({ sub: 'u1', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: {}, tokens: '' })
const cookie = `moatless_session=${new Sealer(secret, 'cookie').seal({ s: s.id, o: `http://wiki.localhost:${port}` })}`
const seconds = Number(process.env.PROFILE_SECONDS ?? 5)
const r = await autocannon({ url: `http://127.0.0.1:${port}/page`, connections: 16, duration: seconds, headers: { host: `wiki.localhost:${port}`, cookie, accept: 'application/json' } })
console.log(`${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}`)
await m.app.close()
m.idp.close()
origin.close()
await store.close()
process.exit(0)
