/**
 * The one contract every Store implementation passes (memory and Redis alike), like
 * oauth2-proxy's session store suite. `sleep` lets a store with a fake clock fast-forward.
 */
import type { Test } from 'tap'
import type { SessionRecord, Store, StoreEvent } from '../../src/store/index.js'

export interface ContractFixture {
  store: Store
  /** Advances time by ms (fake clock, or a real wait). */
  advance (ms: number): Promise<void>
}

let n = 0
export function session (over: Partial<SessionRecord> = {}, now = Date.now()): SessionRecord {
  n++
  return {
    id: `sid-${n}-${Math.random().toString(36).slice(2)}`,
    sub: `sub-${n}`,
    email: `User${n}@Example.com`,
    email_verified: true,
    groups: [],
    claims: { name: 'x', nested: { a: [1, 2] } },
    tokens: 'sealed',
    created_at: now,
    last_seen: now,
    expires_at: now + 3_600_000,
    refreshed_at: now,
    ...over
  }
}

export function storeContract (t: Test, make: () => Promise<ContractFixture>, now: () => number): void {
  t.test('sessions: put, get, delete round-trip exactly (empty arrays stay arrays)', async (t) => {
    const { store } = await make()
    const s = session({}, now())
    await store.putSession(s, 60_000)
    t.same(await store.getSession(s.id), s)
    t.equal(await store.getSession('missing'), null)
    t.equal(await store.deleteSession(s.id), true)
    t.equal(await store.getSession(s.id), null)
    t.equal(await store.deleteSession(s.id), false)
  })

  t.test('sessions: idle timeout and absolute lifetime expire records; touch extends idle', async (t) => {
    const { store, advance } = await make()
    const s = session({ expires_at: now() + 1500 }, now())
    await store.putSession(s, 600)
    await advance(400)
    const touchedAt = now()
    await store.touchSession(s.id, touchedAt, 600)
    await advance(400)
    const after = await store.getSession(s.id)
    t.ok(after, 'still there: touched 400 ms ago')
    t.equal(after?.last_seen, touchedAt, 'touch recorded the activity time')
    await advance(700)
    t.equal(await store.getSession(s.id), null, 'idle for longer than idle timeout')
    const short = session({ expires_at: now() + 300 }, now())
    await store.putSession(short, 60_000)
    await advance(450)
    t.equal(await store.getSession(short.id), null, 'absolute lifetime')
  })

  t.test('sessions: touch never resurrects a deleted session', async (t) => {
    const { store } = await make()
    const s = session({}, now())
    await store.putSession(s, 60_000)
    await store.deleteSession(s.id)
    await store.touchSession(s.id, now(), 60_000)
    t.equal(await store.getSession(s.id), null)
  })

  t.test('sessions: list by user (sub or email, case-insensitive) and delete all of a user', async (t) => {
    const { store } = await make()
    const a1 = session({ sub: 'alice-sub', email: 'Alice@Example.com' }, now())
    const a2 = session({ sub: 'alice-sub', email: 'Alice@Example.com' }, now() + 1)
    const b = session({ sub: 'bob-sub', email: 'bob@example.com' }, now())
    for (const s of [a1, a2, b]) await store.putSession(s, 60_000)
    t.same((await store.listSessions({ user: 'alice@example.com' })).map((s) => s.id), [a1.id, a2.id])
    t.same((await store.listSessions({ user: 'alice-sub' })).map((s) => s.id), [a1.id, a2.id])
    const all = (await store.listSessions()).map((s) => s.id)
    for (const id of [a1.id, a2.id, b.id]) t.ok(all.includes(id))
    t.same((await store.deleteUserSessions('ALICE@example.com')).sort(), [a1.id, a2.id].sort())
    t.equal(await store.getSession(a1.id), null)
    t.ok(await store.getSession(b.id))
    t.same(await store.deleteUserSessions('nobody'), [])
  })

  t.test('single-use values: taken once, then gone; expire', async (t) => {
    const { store, advance } = await make()
    await store.putOnce('handoff', 'c1', 'v1', 60_000)
    t.equal(await store.takeOnce('handoff', 'c1'), 'v1')
    t.equal(await store.takeOnce('handoff', 'c1'), null)
    t.equal(await store.takeOnce('login', 'c1'), null, 'kinds are separate')
    await store.putOnce('handoff', 'c2', 'v2', 200)
    await advance(350)
    t.equal(await store.takeOnce('handoff', 'c2'), null)
    const results = await Promise.all([1, 2, 3, 4].map(async () => { await store.putOnce('x', 'race', 'v', 60_000) }))
    t.equal(results.length, 4)
    const takes = await Promise.all([1, 2, 3, 4].map(() => store.takeOnce('x', 'race')))
    t.equal(takes.filter((v) => v === 'v').length, 1, 'concurrent takers: exactly one wins')
  })

  t.test('setIfAbsent keeps the first value', async (t) => {
    const { store } = await make()
    const key = `k-${Math.random()}`
    t.equal(await store.setIfAbsent(key, 'first'), 'first')
    t.equal(await store.setIfAbsent(key, 'second'), 'first')
    t.equal(await store.get(key), 'first')
    t.equal(await store.get(`${key}-missing`), null)
  })

  t.test('rule sets: versions, activation with history, seeding only when empty', async (t) => {
    const { store } = await make()
    const events: StoreEvent[] = []
    store.onEvent((e) => events.push(e))
    t.equal(await store.activeRuleSetVersion(), null)
    t.equal(await store.seedRuleSet('v1', 'body1'), true)
    t.equal(await store.seedRuleSet('v0', 'body0'), false, 'seeding never replaces an active set')
    t.equal(await store.activeRuleSetVersion(), 'v1')
    await store.putRuleSet('v2', 'body2')
    t.equal(await store.getRuleSet('v2'), 'body2')
    await store.activateRuleSet('v2')
    t.equal(await store.activeRuleSetVersion(), 'v2')
    t.same((await store.ruleSetHistory()).map((h) => h.version), ['v2', 'v1'])
    await t.rejects(store.activateRuleSet('nope'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.ok(events.some((e) => e.type === 'rules-changed' && e.version === 'v2'), 'activation is announced')
  })

  t.test('leases are exclusive until released or expired', async (t) => {
    const { store, advance } = await make()
    const name = `lease-${Math.random()}`
    t.equal(await store.acquireLease(name, 'a', 300), true)
    t.equal(await store.acquireLease(name, 'b', 300), false)
    await store.releaseLease(name, 'b')
    t.equal(await store.acquireLease(name, 'b', 300), false, 'only the owner releases')
    await store.releaseLease(name, 'a')
    t.equal(await store.acquireLease(name, 'b', 300), true)
    await advance(450)
    t.equal(await store.acquireLease(name, 'c', 300), true, 'expired')
  })

  t.test('decision samples: newest first, bounded by count', async (t) => {
    const { store } = await make()
    await store.addDecisionSamples(['1', '2', '3'])
    await store.addDecisionSamples(['4', '5'])
    t.same(await store.recentDecisionSamples(4), ['5', '4', '3', '2'])
    t.same(await store.recentDecisionSamples(100), ['5', '4', '3', '2', '1'])
  })

  t.test('events reach listeners', async (t) => {
    const { store } = await make()
    const got = new Promise<StoreEvent>((resolve) => store.onEvent(resolve))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await store.publish({ type: 'session-revoked', ids: ['a', 'b'] })
    t.same(await got, { type: 'session-revoked', ids: ['a', 'b'] })
    t.equal(await store.ping(), true)
    t.equal(store.healthy, true)
  })
}
