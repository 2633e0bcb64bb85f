import t from 'tap'
import { Sealer } from '../../src/authn/seal.js'
import { Browser } from '../helpers/browser.js'
import { startRedis } from '../helpers/redis.js'
import { startStack, browserSignIn, SESSION_SECRET } from '../helpers/stack.js'

const JSONH = { accept: 'application/json' }
const redis = await startRedis()
t.teardown(() => redis.close())
const apps = { wiki: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] } }

async function waitFor (cond: () => boolean | Promise<boolean>, ms = 8000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

t.test('Redis down with store_outage_grace 0: 503 at once, nothing forwarded; recovers by itself', async (t) => {
  const stack = await startStack({ apps, redisUrl: redis.url, config: { store: { store_outage_grace: 0 } } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stack, `${stack.origin('wiki')}/`, 'alice')
  t.equal(final.status, 200, 'signed in with sessions in Redis')
  t.ok((await stack.moatless.store.listSessions({ user: 'alice@example.com' })).length >= 1, 'the session is in Redis')
  t.equal((await new Browser().request(`${stack.adminUrl}/readyz`)).status, 200)

  await redis.stop()
  await waitFor(() => !stack.moatless.store.healthy)
  const before = stack.upstream.requests.length
  const started = Date.now()
  const res = await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })
  t.equal(res.status, 503, 'never fail open')
  t.ok(Date.now() - started < 1500, `answered quickly (${Date.now() - started} ms)`)
  t.equal(JSON.parse(res.body).error, 'unavailable')
  t.equal(stack.upstream.requests.length, before, 'nothing forwarded')
  const page = await browser.request(`${stack.origin('wiki')}/`, { headers: { accept: 'text/html' } })
  t.equal(page.status, 503)
  t.match(page.body, /refuses the request rather than guess/)
  t.equal((await new Browser().request(`${stack.adminUrl}/readyz`)).status, 503, 'not ready while the store is down')

  await redis.start()
  t.ok(await waitFor(() => stack.moatless.store.healthy), 'reconnected without a restart')
  t.ok(await waitFor(async () => (await new Browser().request(`${stack.adminUrl}/readyz`)).status === 200), 'ready again')
  // The restarted redis-server is empty: the old session is gone, a new sign-in works.
  t.equal((await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })).status, 401)
  const again = await browserSignIn(new Browser(), stack, `${stack.origin('wiki')}/`, 'alice')
  t.equal(again.final.status, 200)
})

t.test('Redis down within store_outage_grace: only sessions verified before the outage are served', async (t) => {
  const stack = await startStack({ apps, redisUrl: redis.url, config: { store: { store_outage_grace: '30s' } } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('wiki')}/`, 'alice')
  t.equal((await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })).status, 200)
  await redis.stop()
  await waitFor(() => !stack.moatless.store.healthy)
  t.equal((await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })).status, 200, 'verified session keeps working during the grace')
  // A genuine cookie for a session this replica never verified: cannot be decided → 503.
  const forged = new Sealer(SESSION_SECRET, 'cookie').seal({ s: 'never-seen-session', o: stack.origin('wiki') })
  const unknown = await new Browser().request(`${stack.origin('wiki')}/`, { headers: { ...JSONH, cookie: `moatless_session=${forged}` } })
  t.equal(unknown.status, 503)
  await redis.start()
  await waitFor(() => stack.moatless.store.healthy)
})
