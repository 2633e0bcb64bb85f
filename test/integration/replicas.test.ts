/**
 * Two real `moatless serve` processes sharing one private redis-server behave as one proxy:
 * a session made on one works on the other; revocation, rule changes and sign-out reach both
 * within a second; open websockets are closed; a Redis outage is refused (503), and both
 * recover by themselves.
 */
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { startIdp } from '../../src/demo/idp.js'
import { encodeRuleSet } from '../../src/rules/ruleset.js'
import { RedisStore } from '../../src/store/index.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { startReplica, type Replica } from '../helpers/replica.js'
import { CLIENT_SECRET, SESSION_SECRET, browserSignIn } from '../helpers/stack.js'
import { startUpstream } from '../helpers/upstream.js'

const redis = await startRedis({ persist: true })
const pa = await freePort()
const pb = await freePort()
const authUrl = `http://auth.localhost:${pa}`
const wiki = `http://wiki.localhost:${pa}`
const idp = await startIdp({ clients: [{ client_id: 'moatless', client_secret: CLIENT_SECRET, redirect_uris: [`${authUrl}/.moatless/callback`], post_logout_redirect_uris: [`${authUrl}/.moatless/signed_out`] }] })
const upstream = await startUpstream()
const dir = mkdtempSync(join(tmpdir(), 'moatless-replicas-'))
const configFile = join(dir, 'moatless.yaml')
const apps = [{
  name: 'wiki',
  from: wiki,
  to: upstream.url,
  websockets: true,
  rules: [{ name: 'staff', allow: { domains: ['example.com'] } }]
}]
writeFileSync(configFile, `listen:
  address: 127.0.0.1
  port: \${MOATLESS_PORT}
admin:
  address: 127.0.0.1
  port: \${MOATLESS_ADMIN_PORT}
authenticate:
  url: ${authUrl}
idp:
  issuer: ${idp.issuer}
  client_id: moatless
  client_secret: \${MOATLESS_CLIENT_SECRET}
session:
  secret: \${MOATLESS_SESSION_SECRET}
store:
  redis: ${redis.url}
  key_prefix: "rep:"
  store_outage_grace: 0
apps: ${JSON.stringify(apps)}
`)
const env = { MOATLESS_CLIENT_SECRET: CLIENT_SECRET, MOATLESS_SESSION_SECRET: SESSION_SECRET, MOATLESS_LOG_LEVEL: 'info' }
const a = await startReplica(configFile, env, pa, await freePort())
const b = await startReplica(configFile, env, pb, await freePort())
const store = new RedisStore({ redis: redis.url, key_prefix: 'rep:', store_outage_grace: 0 })
await store.connect()
t.teardown(async () => {
  await a.stop(); await b.stop()
  await store.close()
  await upstream.close(); await idp.close(); await redis.close()
})

const JSONH = { accept: 'application/json' }
const cookieOf = (browser: Browser) => browser.cookies(wiki).map((c) => `${c.name}=${c.value}`).join('; ')
const stackLike = { idp, origin: () => wiki } as never

async function within (ms: number, cond: () => Promise<boolean>): Promise<number | null> {
  const start = Date.now()
  while (Date.now() - start < ms) {
    if (await cond()) return Date.now() - start
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return null
}
const statusOn = async (r: Replica, cookie: string, path = '/') => (await r.fetch(`${wiki}${path}`, { headers: { ...JSONH, cookie } })).status

t.test('sign in on A, use on B', async (t) => {
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stackLike, `${wiki}/`, 'alice')
  t.equal(final.status, 200)
  t.equal(await statusOn(b, cookieOf(browser)), 200)
  t.equal(upstream.requests.at(-1)?.headers['x-moatless-jwt-assertion'] !== undefined, true)
})

t.test('steady state costs no Redis command per request', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stackLike, `${wiki}/`, 'alice')
  const cookie = cookieOf(browser)
  t.equal(await statusOn(a, cookie), 200, 'warm the cache')
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const stats = async () => {
    const info = await admin.info('commandstats')
    const out: Record<string, number> = {}
    for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2])
    return out
  }
  const before = await stats()
  const started = Date.now()
  for (let i = 0; i < 1000; i++) {
    const s = await statusOn(a, cookie, `/item/${i}`)
    if (s !== 200) { t.fail(`request ${i}: ${s}`); break }
  }
  const seconds = (Date.now() - started) / 1000
  const after = await stats()
  const delta: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) delta[k] = v - (before[k] ?? 0)
  delete delta.info
  // Off the request path, by time not by traffic: one XADD per replica per second (decision
  // samples), one GET per replica per 5 s (rule-set version check).
  const background = (delta.xadd ?? 0) + (delta.get ?? 0)
  t.ok(background <= Math.ceil(seconds + 1) * 2 + Math.ceil(seconds / 5 + 1) * 2, `background commands bounded by time: ${JSON.stringify(delta)} in ${seconds}s`)
  delete delta.xadd
  delete delta.get
  t.same(delta, {}, `no other command during 1,000 requests (${JSON.stringify(delta)})`)
})

t.test('sign-out on A: B refuses the session within 1 s', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stackLike, `${wiki}/`, 'alice')
  const cookie = cookieOf(browser)
  t.equal(await statusOn(b, cookie), 200, 'B has it cached')
  const out = await browser.request(`${wiki}/.moatless/sign_out`, { headers: { accept: 'text/html' } })
  t.equal(out.status, 302)
  const ms = await within(1000, async () => await statusOn(b, cookie) === 401)
  t.not(ms, null, `B denied it after ${ms} ms`)
})

t.test('revocation (as `moatless sessions revoke` does it) reaches both, and closes open websockets', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stackLike, `${wiki}/`, 'bob')
  const cookie = cookieOf(browser)
  t.equal(await statusOn(a, cookie), 200)
  t.equal(await statusOn(b, cookie), 200)
  const ws = new WebSocket(`ws://127.0.0.1:${pb}/live`, { headers: { host: `wiki.localhost:${pa}`, cookie } })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  const closed = new Promise<number>((resolve) => ws.once('close', () => resolve(Date.now())))
  const revokedAt = Date.now()
  const ids = await store.deleteUserSessions('bob@example.com')
  await store.publish({ type: 'session-revoked', ids })
  t.ok(ids.length >= 1)
  const closedAt = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 1500))])
  t.not(closedAt, -1, 'websocket on B closed')
  t.ok(closedAt - revokedAt < 1000, `within ${closedAt - revokedAt} ms`)
  t.not(await within(1000, async () => await statusOn(a, cookie) === 401 && await statusOn(b, cookie) === 401), null, 'both deny')
})

t.test('a new rule set reaches both replicas within 1 s', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stackLike, `${wiki}/`, 'alice')
  const cookie = cookieOf(browser)
  t.equal(await statusOn(a, cookie, '/reports'), 200)
  t.equal(await statusOn(b, cookie, '/reports'), 200)
  const next = [{ ...apps[0], rules: [{ name: 'no-reports', deny: { paths: ['/reports/**'] } }, ...apps[0]!.rules] }]
  const { version, body } = encodeRuleSet(next, 'test')
  await store.putRuleSet(version, body)
  await store.activateRuleSet(version)
  const ms = await within(1000, async () => await statusOn(a, cookie, '/reports') === 403 && await statusOn(b, cookie, '/reports') === 403)
  t.not(ms, null, `both switched in ${ms} ms`)
  t.equal(await statusOn(a, cookie, '/other'), 200, 'the rest still allowed')
})

t.test('Redis killed during traffic: 503, nothing forwarded; back by itself when Redis returns', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stackLike, `${wiki}/`, 'alice')
  const cookie = cookieOf(browser)
  t.equal(await statusOn(a, cookie), 200)
  await redis.stop()
  // A replica learns of the outage when the connection drops (a request racing that moment is
  // still served from its verified cache); from then on nothing may pass.
  const ms = await within(3000, async () => await statusOn(a, cookie) === 503 && await statusOn(b, cookie) === 503)
  t.not(ms, null, 'both refuse with 503')
  const before = upstream.requests.length
  const started = Date.now()
  t.equal(await statusOn(b, cookie), 503)
  t.ok(Date.now() - started < 1500, 'quickly, no hang')
  for (let i = 0; i < 20; i++) t.equal(await statusOn(i % 2 === 0 ? a : b, cookie, `/during/${i}`), 503)
  t.equal(upstream.requests.length, before, 'nothing forwarded during the outage')
  await redis.start()
  const back = await within(8000, async () => await statusOn(a, cookie) === 200 && await statusOn(b, cookie) === 200)
  t.not(back, null, `both serve again after ${back} ms, without a restart`)
})
