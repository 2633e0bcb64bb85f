/**
 * What a session due for its re-check at the IdP (`session.refresh_interval`) asks of Redis
 * while requests keep coming (issue 6: no store round trip per request in steady state).
 * Watched with MONITOR on a private redis-server.
 *
 * A sign-in without `offline_access` leaves the session without a refresh token (the default
 * scopes, and most IdPs' default): there is nothing to re-check with, so the refresher records
 * the attempt. That attempt must not start again on the next request, nor on every request after
 * it: a replica that cannot refresh a session waits before it tries again. (The same wait covers
 * another replica holding the lease and the IdP being unreachable: test/authn/refresh-retry.test.ts
 * checks the wait itself.)
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Browser } from '../helpers/browser.js'
import { startRedis } from '../helpers/redis.js'
import { browserSignIn, startStack } from '../helpers/stack.js'

const JSONH = { accept: 'application/json' }
const redis = await startRedis()
const stack = await startStack({
  redisUrl: redis.url,
  apps: { wiki: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] } },
  // No offline_access: the IdP issues no refresh token.
  config: { idp: { scopes: ['openid', 'email', 'profile'] }, session: { refresh_interval: '3s' } }
})
t.teardown(async () => { await stack.close(); await redis.close() })

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function watch (): Promise<{ seen: string[][]; stop: () => Promise<void> }> {
  const client = new Redis(redis.url)
  const monitor = await client.monitor()
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => { seen.push(args) })
  return { seen, stop: async () => { monitor.disconnect(); client.disconnect() } }
}

t.test('a session with nothing to refresh with: one attempt, not one per request', async (t) => {
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stack, `${stack.origin('wiki')}/`, 'alice')
  t.equal(final.status, 200)
  const [before] = await stack.moatless.store.listSessions({ user: 'alice@example.com' })
  t.ok(before !== undefined, 'signed in')
  await sleep(3100)

  const m = await watch()
  // 1 s of requests one after another, well within the retry wait that follows the first one
  // (the refresh interval, 3 s, where that is shorter than the usual 30 s).
  const until = Date.now() + 1000
  const statuses = new Map<number, number>()
  let requests = 0
  while (Date.now() < until) {
    const { status } = await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    requests++
  }
  await sleep(200)
  await m.stop()

  const leases = m.seen.filter((a) => a[0]?.toLowerCase() === 'set' && a[1]?.includes(':lease:refresh:'))
  t.ok(requests >= 20, `${requests} requests sent`)
  t.same([...statuses], [[200, requests]], 'every one answered 200: still signed in')
  t.equal(leases.length, 1, `one refresh attempt in ${requests} requests (${leases.length} leases taken; the store saw: ${[...new Set(m.seen.map((a) => a[0]?.toLowerCase()))].join(', ')})`)
  const [after] = await stack.moatless.store.listSessions({ user: 'alice@example.com' })
  t.ok(after !== undefined && before !== undefined && after.refreshed_at > before.refreshed_at, 'the attempt is recorded on the session')
})
