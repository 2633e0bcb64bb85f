/**
 * When the session cache asks for a session to be re-checked at the IdP (`whenStale`): once when
 * it is due, then again only after a wait (REFRESH_RETRY_MS, or the refresh interval when that
 * is shorter), unless a refresh replaced the cached entry meanwhile. Before, a refresh that left
 * the entry as it was (no refresh token, another replica holding the lease, the IdP down) was
 * started again by the very next request. A MemoryStore and a clock the test moves.
 */
import t from 'tap'
import { Sessions } from '../../src/authn/sessions.js'
import { MemoryStore } from '../../src/store/index.js'

const fields = { sub: 'user-1001', email: 'alice@example.com', email_verified: true, groups: [], claims: {}, tokens: '' }

function setUp (refreshMs: number): { sessions: Sessions; store: MemoryStore; clock: { now: number }; started: () => number } {
  const clock = { now: Date.now() }
  const store = new MemoryStore()
  const sessions = new Sessions(store, { lifetimeMs: 86_400_000, idleMs: 86_400_000, outageGraceMs: 0, refreshMs }, 100, () => clock.now)
  let n = 0
  sessions.whenStale(() => { n++ })
  return { sessions, store, clock, started: () => n }
}

t.test('due: started once, then not again before the wait, then again', async (t) => {
  const { sessions, clock, started } = setUp(10_000)
  const { id } = await sessions.create(fields)
  for (let i = 0; i < 10; i++) sessions.cached(id)
  t.equal(started(), 0, 'not due yet')
  clock.now += 10_000
  for (let i = 0; i < 50; i++) t.equal(sessions.cached(id)?.status, 'ok')
  t.equal(started(), 1, 'due: one refresh for 50 requests')
  clock.now += 9_999
  for (let i = 0; i < 50; i++) sessions.cached(id)
  t.equal(started(), 1, 'none while the entry waits (the interval, 10 s, is shorter than the usual wait)')
  clock.now += 1
  sessions.cached(id)
  sessions.cached(id)
  t.equal(started(), 2, 'one more once the wait is over')
})

t.test('a refresh that lands replaces the entry: not due again until the next interval', async (t) => {
  const { sessions, store, clock, started } = setUp(10_000)
  const record = await sessions.create(fields)
  clock.now += 10_000
  sessions.cached(record.id)
  t.equal(started(), 1)
  // What SessionRefresher does when the IdP answers: the record rewritten, every replica told.
  await store.putSession({ ...record, refreshed_at: clock.now }, 86_400_000)
  await store.publish({ type: 'session-updated', ids: [record.id] })
  await new Promise((resolve) => setImmediate(resolve)) // delivered asynchronously, as by Redis
  t.equal(sessions.cached(record.id), undefined, 'the event dropped the cached entry')
  t.equal((await sessions.lookup(record.id)).status, 'ok', 'read again')
  clock.now += 9_999
  sessions.cached(record.id)
  t.equal(started(), 1, 'not due: refreshed 9.999 s ago')
  clock.now += 1
  sessions.cached(record.id)
  t.equal(started(), 2, 'due again one interval after the refresh')
})

t.test('the default interval (5 min): retried after 30 s, not on every request', async (t) => {
  const { sessions, clock, started } = setUp(300_000)
  const { id } = await sessions.create(fields)
  clock.now += 300_000
  t.equal((await sessions.lookup(id)).status, 'ok', 'read from the store (the cached copy is older than a minute)')
  for (let i = 0; i < 100; i++) sessions.cached(id)
  t.equal(started(), 1)
  clock.now += 29_999
  for (let i = 0; i < 100; i++) sessions.cached(id)
  t.equal(started(), 1, 'none within 30 s')
  clock.now += 1
  sessions.cached(id)
  t.equal(started(), 2, 'one more after 30 s')
})
