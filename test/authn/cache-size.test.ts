/**
 * session.cache_size bounds the per-process session cache: with real parts (Sessions on the
 * MemoryStore, and the whole proxy built from YAML through the real config loader), the
 * session fetched longest ago leaves the cache once more than cache_size sessions were
 * fetched, while the newest stay cached.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { build } from '../../src/app.js'
import { Sealer } from '../../src/authn/seal.js'
import { Sessions } from '../../src/authn/sessions.js'
import { loadConfigText, formatErrors } from '../../src/config/index.js'
import { createLogger } from '../../src/log.js'
import { MemoryStore } from '../../src/store/index.js'

const POLICY = { lifetimeMs: 3_600_000, idleMs: 3_600_000, outageGraceMs: 0 }
const fields = (i: number): Parameters<Sessions['create']>[0] =>
  ({ sub: `user-${i}`, email: `user-${i}@example.com`, email_verified: true, groups: [], claims: {}, tokens: '' })

t.test('Sessions keeps at most `max` sessions, dropping the one fetched longest ago', async (t) => {
  const max = 5
  const sessions = new Sessions(new MemoryStore(), POLICY, max)
  const ids: string[] = []
  for (let i = 0; i <= max; i++) ids.push((await sessions.create(fields(i))).id)

  for (const id of ids.slice(0, max)) t.equal((await sessions.lookup(id)).status, 'ok')
  for (const id of ids.slice(0, max)) t.equal(sessions.cached(id)?.status, 'ok', 'the first max fetches all fit')

  t.equal((await sessions.lookup(ids[max] as string)).status, 'ok', 'fetch number max+1')
  t.equal(sessions.cached(ids[0] as string), undefined, 'the session fetched first is no longer cached')
  for (const id of ids.slice(1)) t.equal(sessions.cached(id)?.status, 'ok', 'the newest max are')

  // Fetched again, the evicted session comes back as the newest; now the next oldest goes.
  t.equal((await sessions.lookup(ids[0] as string)).status, 'ok')
  t.equal(sessions.cached(ids[0] as string)?.status, 'ok')
  t.equal(sessions.cached(ids[1] as string), undefined)
})

t.test('the proxy sizes its session cache from session.cache_size', async (t) => {
  const from = 'http://wiki.localhost:8080'
  const secret = '0123456789abcdef0123456789abcdef'
  const yaml = `authenticate:
  url: http://auth.localhost:8080
idp:
  issuer: http://127.0.0.1:1
  client_id: moatless
  client_secret: s3cret
session:
  secret: ${secret}
  cache_size: 100
apps:
  - name: wiki
    from: ${from}
    to: http://127.0.0.1:9
`
  const r = loadConfigText(yaml, 'test.yaml', {})
  if (!r.ok) throw new Error(formatErrors(r.errors))
  const config = r.loaded.config
  t.equal(config.session.cache_size, 100)

  const store = new MemoryStore()
  const logger = createLogger({ level: 'error', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  const moatless = await build({ config, store, logger, rulesPollMs: 0 })
  t.teardown(async () => {
    moatless.stop()
    await moatless.app.close()
    moatless.idp.close()
    await store.close()
  })

  const sealer = new Sealer(secret, 'cookie')
  const ids: string[] = []
  for (let i = 0; i <= 100; i++) ids.push((await moatless.sessions.create(fields(i))).id)
  for (const id of ids) {
    // No rule allows anything (default deny), but the session is looked up first.
    const res = await moatless.app.inject({ url: '/page', headers: { host: 'wiki.localhost:8080', accept: 'application/json', cookie: `moatless_session=${sealer.seal({ s: id, o: from })}` } })
    t.equal(res.statusCode, 403)
  }
  t.equal(moatless.sessions.cached(ids[0] as string), undefined, 'session 1 of 101 is no longer cached')
  t.equal(ids.slice(1).filter((id) => moatless.sessions.cached(id)?.status === 'ok').length, 100, 'sessions 2..101 are')
})
