/**
 * The one contract every Store implementation passes (memory and Redis alike), like
 * oauth2-proxy's session store suite. `sleep` lets a store with a fake clock fast-forward.
 */
import type { Test } from 'tap'
import type { DeviceRecord, SessionRecord, Store, StoreEvent } from '../../src/store/index.js'

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

export function device (over: Partial<DeviceRecord> = {}, now = Date.now()): DeviceRecord {
  n++
  return {
    id: `dev-${n}-${Math.random().toString(36).slice(2)}`,
    owner: 'alice@example.com',
    cert_fingerprints: [],
    public_keys: [],
    managed: false,
    corp_owned: false,
    posture: {},
    status: 'active',
    created_at: now,
    updated_at: now,
    ...over
  }
}

const fp = (c: string): string => c.repeat(64)

/** Events published from now on, and a way to wait for one. */
function recordEvents (store: Store): { events: StoreEvent[]; until: (pred: (e: StoreEvent) => boolean, ms?: number) => Promise<boolean> } {
  const events: StoreEvent[] = []
  store.onEvent((e) => events.push(e))
  return {
    events,
    async until (pred, ms = 1000) {
      const end = Date.now() + ms
      while (Date.now() < end) {
        if (events.some(pred)) return true
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      return false
    }
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
    const a1 = session({ sub: 'Alice-Sub', email: 'Alice@Example.com' }, now())
    const a2 = session({ sub: 'Alice-Sub', email: 'Alice@Example.com' }, now() + 1)
    const b = session({ sub: 'bob-sub', email: 'bob@example.com' }, now())
    for (const s of [a1, a2, b]) await store.putSession(s, 60_000)
    t.same((await store.listSessions({ user: 'alice@example.com' })).map((s) => s.id), [a1.id, a2.id])
    t.same((await store.listSessions({ user: 'Alice-Sub' })).map((s) => s.id), [a1.id, a2.id], 'by sub as written')
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

  t.test('devices: put, get, list round-trip exactly; each write is announced', async (t) => {
    const { store } = await make()
    // Subscribing takes a moment on Redis.
    const { until } = recordEvents(store)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const d = device({
      cert_fingerprints: [fp('a')],
      public_keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', alg: 'EdDSA', kid: 'k1' }],
      posture: { os: 'macos', os_version: '14.5', disk_encrypted: true, reported_at: now(), extra: { agent: '1.0', nested: [1, { a: null }] } }
    }, now())
    await store.putDevice(d)
    t.same(await store.getDevice(d.id), d)
    t.equal(await store.getDevice('missing'), null)
    t.ok(await until((e) => e.type === 'device-changed' && e.id === d.id), 'device-changed published')
    const e = device({}, now() + 1)
    await store.putDevice(e)
    const listed = (await store.listDevices()).map((x) => x.id)
    t.ok(listed.indexOf(d.id) !== -1 && listed.indexOf(d.id) < listed.indexOf(e.id), 'listed, oldest first')
    const copy = await store.getDevice(d.id)
    copy!.posture.os = 'changed'
    t.equal((await store.getDevice(d.id))?.posture.os, 'macos', 'callers get copies')
  })

  t.test('devices: lookup by certificate fingerprint follows enrolment changes', async (t) => {
    const { store } = await make()
    const d = device({ cert_fingerprints: [fp('b'), fp('c')] }, now())
    await store.putDevice(d)
    t.equal((await store.deviceByFingerprint(fp('b')))?.id, d.id)
    t.equal((await store.deviceByFingerprint(fp('c')))?.id, d.id)
    t.equal(await store.deviceByFingerprint(fp('d')), null)
    await store.updateDevice(d.id, (cur) => ({ ...cur, cert_fingerprints: [fp('c')] }))
    t.equal(await store.deviceByFingerprint(fp('b')), null, 'a removed certificate no longer identifies the device')
    t.equal((await store.deviceByFingerprint(fp('c')))?.id, d.id)
    // The certificate moves to another device: the first one's cleanup must not unindex it.
    const other = device({ cert_fingerprints: [fp('c')] }, now())
    await store.putDevice(other)
    await store.updateDevice(d.id, (cur) => ({ ...cur, cert_fingerprints: [] }))
    t.equal((await store.deviceByFingerprint(fp('c')))?.id, other.id)
  })

  t.test('devices: update is read-modify-write without lost updates; revoke keeps the record', async (t) => {
    const { store } = await make()
    const { until } = recordEvents(store)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const d = device({}, now())
    await store.putDevice(d)
    t.equal(await store.updateDevice('missing', (cur) => cur), null)
    await Promise.all([
      store.updateDevice(d.id, (cur) => ({ ...cur, managed: true })),
      store.updateDevice(d.id, (cur) => ({ ...cur, corp_owned: true })),
      store.updateDevice(d.id, (cur) => ({ ...cur, posture: { ...cur.posture, firewall: true } }))
    ])
    const after = await store.getDevice(d.id)
    t.same([after?.managed, after?.corp_owned, after?.posture.firewall], [true, true, true], 'no concurrent change was lost')
    await t.rejects(store.updateDevice(d.id, (cur) => ({ ...cur, id: 'other' })), /rename/)
    const revoked = await store.revokeDevice(d.id)
    t.equal(revoked?.status, 'revoked')
    t.equal((await store.getDevice(d.id))?.status, 'revoked', 'the record stays')
    t.ok((await store.listDevices()).some((x) => x.id === d.id && x.status === 'revoked'))
    t.equal(await store.revokeDevice('missing'), null)
    t.ok(await until((e) => e.type === 'device-changed' && e.id === d.id), 'revocation announced')
  })

  t.test('claims: the first holder keeps a claim until it expires', async (t) => {
    const { store, advance } = await make()
    const id = `jti-${Math.random()}`
    t.equal(await store.claimOnce('device-jti', id, 'token-a', 300), 'token-a')
    t.equal(await store.claimOnce('device-jti', id, 'token-a', 300), 'token-a', 'the same holder again')
    t.equal(await store.claimOnce('device-jti', id, 'token-b', 300), 'token-a', 'another holder sees the first')
    t.equal(await store.claimOnce('other-kind', id, 'token-b', 300), 'token-b', 'kinds are separate')
    const racers = await Promise.all(['x', 'y', 'z'].map((h) => store.claimOnce('race', id, h, 60_000)))
    t.equal(new Set(racers).size, 1, 'concurrent claimers agree on one holder')
    await advance(450)
    t.equal(await store.claimOnce('device-jti', id, 'token-b', 300), 'token-b', 'expired')
  })
}
