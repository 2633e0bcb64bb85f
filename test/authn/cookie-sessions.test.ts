/**
 * The session stage's memory: CookieSessions remembers each unsealed cookie together with the
 * session cache's entry for it (a SessionMemo), so a signed-in request needs one table lookup.
 * A memo must never answer for a session the cache no longer holds: revoked on this replica or
 * another, updated, expired, evicted, or dropped after a store outage. Real parts: Sessions on
 * the MemoryStore (two Sessions on one store are two replicas: events reach both) and on the
 * RedisStore against a real redis-server that is killed and started again.
 */
import t from 'tap'
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { CookieSessions } from '../../src/authn/session-stage.js'
import { Sealer } from '../../src/authn/seal.js'
import { Sessions, type SessionLookup, type SessionMemo } from '../../src/authn/sessions.js'
import { MemoryStore, RedisStore } from '../../src/store/index.js'
import { startRedis } from '../helpers/redis.js'

const POLICY = { lifetimeMs: 3_600_000, idleMs: 3_600_000, outageGraceMs: 30_000 }
const ORIGIN = 'https://wiki.example.com'
const fields = (i: number, groups: string[] = ['staff']): Parameters<Sessions['create']>[0] =>
  ({ sub: `user-${i}`, email: `user-${i}@example.com`, email_verified: true, groups, claims: {}, tokens: '' })
const sealer = new Sealer('cookie-sessions-test-secret-0123456789abcdef', 'cookie')
const cookieFor = (id: string, origin = ORIGIN): string => sealer.seal({ s: id, o: origin })
/** Store events arrive asynchronously (as over Redis pub/sub): after a publish, let them arrive. */
const delivered = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
const status = (x: SessionLookup | null | undefined): string => x === null ? 'not ours' : x === undefined ? 'ask the store' : x.status

t.test('a memo answers as the cache does, and is void once the cache lets go of its entry', async (t) => {
  const store = new MemoryStore()
  const a = new Sessions(store, POLICY, 3)
  const b = new Sessions(store, POLICY, 3) // another replica on the same store
  const ids: string[] = []
  for (let i = 0; i < 4; i++) ids.push((await a.create(fields(i))).id)
  await b.lookup(ids[0] as string)
  // create() cached all four in a cache of 3: the first is gone already.
  const memo = (id: string): SessionMemo => ({ id, hit: null })

  const m1 = memo(ids[1] as string)
  const first = a.cachedFor(m1)
  t.equal(status(first), 'ok')
  t.not(m1.hit, null, 'the memo holds the entry it found')
  t.equal(a.cachedFor(m1), first, 'and answers from it: the same answer object')

  t.test('revoked on another replica', async (t) => {
    await b.revoke(ids[1] as string)
    await delivered()
    t.equal(status(a.cachedFor(m1)), 'ask the store', 'not answered from the memo')
    t.equal(m1.hit, null)
    t.equal((await a.lookup(ids[1] as string)).status, 'none')
  })

  t.test('updated (session-updated event): the memo moves to the entry fetched after it', async (t) => {
    const m2 = memo(ids[2] as string)
    const before = a.cachedFor(m2)
    t.equal(status(before), 'ok')
    const record = await store.getSession(ids[2] as string)
    if (record === null) throw new Error('session missing')
    await store.putSession({ ...record, groups: ['admins'] }, POLICY.idleMs)
    await store.publish({ type: 'session-updated', ids: [ids[2] as string] })
    await delivered()
    t.equal(status(a.cachedFor(m2)), 'ask the store', 'the old entry is not used')
    const after = await a.lookup(ids[2] as string)
    t.equal(after.status, 'ok')
    const again = a.cachedFor(m2)
    t.equal(again, after, 'the memo now holds the new entry')
    t.strictSame(again?.status === 'ok' ? again.identity.groups : null, ['admins'])
  })

  t.test('evicted when the cache is full', async (t) => {
    const m3 = memo(ids[3] as string)
    t.equal(status(a.cachedFor(m3)), 'ok')
    for (let i = 10; i < 13; i++) await a.create(fields(i)) // three newer sessions push it out
    t.equal(a.cached(ids[3] as string), undefined, 'the cache no longer holds it')
    t.equal(status(a.cachedFor(m3)), 'ask the store', 'nor does the memo answer for it')
    t.equal((await a.lookup(ids[3] as string)).status, 'ok', 'the store still has it')
    t.equal(status(a.cachedFor(m3)), 'ok')
  })
})

t.test('a memo does not outlive its session: idle timeout and lifetime', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore()
  const sessions = new Sessions(store, { lifetimeMs: 10_000, idleMs: 4_000, outageGraceMs: 0 }, 100, () => now)
  const id = (await sessions.create(fields(1))).id
  const m = { id, hit: null }
  t.equal(status(sessions.cachedFor(m)), 'ok')
  now += 4_000
  t.equal(status(sessions.cachedFor(m)), 'none', 'idle for idle_timeout: no session')
  t.equal(status(sessions.cachedFor(m)), 'ask the store', 'and the entry is dropped')

  const id2 = (await sessions.create(fields(2))).id
  const m2 = { id: id2, hit: null }
  for (let i = 0; i < 3; i++) { now += 3_000; t.equal(status(sessions.cachedFor(m2)), 'ok', 'in use, within its lifetime') }
  now += 1_000
  t.equal(status(sessions.cachedFor(m2)), 'none', 'past its lifetime')
  t.equal(status(sessions.cachedFor(m2)), 'ask the store')
})

t.test('CookieSessions: only our cookies, for their own origin, and at most cache_size of them', async (t) => {
  const store = new MemoryStore()
  const sessions = new Sessions(store, POLICY, 100)
  const cookies = new CookieSessions(sessions, sealer, 3)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await sessions.create(fields(i))).id)
  const value = cookieFor(ids[0] as string)

  const found = cookies.cached(value, ORIGIN)
  t.equal(status(found), 'ok')
  t.equal(found !== null && found !== undefined && found.status === 'ok' ? found.identity.sub : null, 'user-0')
  t.equal(cookies.cached(value, ORIGIN), found, 'the second request: the same answer, from the memo')
  t.equal(cookies.sessionId(value, ORIGIN), ids[0])
  t.equal(status(cookies.cached(value, 'https://other.example.com')), 'not ours', 'a cookie carried to another origin is no session there')
  t.equal(cookies.sessionId(value, 'https://other.example.com'), null)
  const tampered = value.slice(0, -2) + (value.endsWith('AA') ? 'BB' : 'AA')
  t.equal(status(cookies.cached(tampered, ORIGIN)), 'not ours', 'a tampered cookie is no session')
  t.equal(cookies.cached(value, ORIGIN), found, 'and the cookie it began like still answers')
  t.equal(status(cookies.cached('garbage', ORIGIN)), 'not ours')
  t.equal(status(cookies.cached(new Sealer('another-secret-0123456789abcdef-0123456789', 'cookie').seal({ s: ids[0], o: ORIGIN }), ORIGIN)), 'not ours', 'sealed with another key')
  t.equal(status(cookies.cached(sealer.seal({ s: 42, o: ORIGIN }), ORIGIN)), 'not ours', 'sealed by us but not a session cookie')
  t.equal(status(cookies.cached(value + '==', ORIGIN)), 'not ours', 'another spelling of the same sealed bytes is no session')
  t.equal(status(cookies.cached(value.slice(0, 20) + '!' + value.slice(20), ORIGIN)), 'not ours')
  t.equal(cookies.size, 1, 'only the cookie that unsealed is remembered')

  for (let i = 1; i < 5; i++) t.equal(status(cookies.cached(cookieFor(ids[i] as string), ORIGIN)), 'ok')
  t.equal(cookies.size, 3, 'no more than cache_size unsealed cookies')
  t.equal(status(cookies.cached(value, ORIGIN)), 'ok', 'a cookie unsealed longest ago and let go is unsealed again')

  await sessions.revoke(ids[4] as string)
  t.equal(status(cookies.cached(cookieFor(ids[4] as string), ORIGIN)), 'ask the store', 'revoked: the remembered cookie no longer answers from memory')
  t.equal((await sessions.lookup(ids[4] as string)).status, 'none')
})

t.test('two genuine cookies that begin alike (the same IV) are told apart by their whole value', async (t) => {
  // The cache is keyed by a value's first characters, its random IV: sealed here with one IV
  // on purpose, as the Sealer does it (AES-256-GCM, key from HKDF of the secret and purpose).
  const secret = 'cookie-sessions-test-secret-0123456789abcdef'
  const key = Buffer.from(hkdfSync('sha256', secret, 'moatless-v1', 'cookie', 32))
  const iv = randomBytes(12)
  const sealWithIv = (value: unknown): string => {
    const c = createCipheriv('aes-256-gcm', key, iv)
    const body = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()])
    return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url')
  }
  const sessions = new Sessions(new MemoryStore(), POLICY, 100)
  const cookies = new CookieSessions(sessions, new Sealer(secret, 'cookie'), 100)
  const one = (await sessions.create(fields(1))).id
  const two = (await sessions.create(fields(2))).id
  const a = sealWithIv({ s: one, o: ORIGIN })
  const b = sealWithIv({ s: two, o: ORIGIN })
  t.equal(a.slice(0, 16), b.slice(0, 16), 'they begin alike')
  t.not(a, b)
  const sub = (x: SessionLookup | null | undefined): string | null => x !== null && x !== undefined && x.status === 'ok' ? x.identity.sub : null
  for (let round = 0; round < 2; round++) {
    t.equal(sub(cookies.cached(a, ORIGIN)), 'user-1')
    t.equal(sub(cookies.cached(b, ORIGIN)), 'user-2')
  }
  t.equal(cookies.sessionId(a, ORIGIN), one)
  t.equal(cookies.sessionId(b, ORIGIN), two)
  t.equal(cookies.size, 2)

  // Six alike: at most four are remembered under one key, and each still names its own session.
  const ids = [one, two]
  for (let i = 3; i <= 6; i++) ids.push((await sessions.create(fields(i))).id)
  const values = ids.map((id) => sealWithIv({ s: id, o: ORIGIN }))
  for (let round = 0; round < 2; round++) {
    values.forEach((v, i) => t.equal(sub(cookies.cached(v, ORIGIN)), `user-${i + 1}`))
  }
  t.equal(cookies.size, 4, 'four remembered')
})

t.test('after a store outage the memos are void: every session is read again', async (t) => {
  const redis = await startRedis()
  const store = new RedisStore({ redis: redis.url, key_prefix: 'memo:', store_outage_grace: 30_000 })
  t.teardown(async () => { await store.close(); await redis.close() })
  t.equal(await store.connect(), true)
  const sessions = new Sessions(store, POLICY, 100)
  const cookies = new CookieSessions(sessions, sealer, 100)
  const id = (await sessions.create(fields(1))).id
  const value = cookieFor(id)
  t.equal(status(cookies.cached(value, ORIGIN)), 'ok')

  await redis.stop()
  for (let i = 0; i < 50 && store.healthy; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(store.healthy, false)
  t.equal(status(cookies.cached(value, ORIGIN)), 'ok', 'within store_outage_grace the verified session still answers')

  await redis.start() // empty: the session is gone from the store
  for (let i = 0; i < 100 && !store.healthy; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(store.healthy, true)
  t.equal(status(cookies.cached(value, ORIGIN)), 'ask the store', 'after recovery the memo does not answer')
  t.equal((await sessions.lookup(id)).status, 'none', 'and the store says there is no such session')
})
