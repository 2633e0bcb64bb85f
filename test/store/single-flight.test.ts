/**
 * When a cached session or device expires while many requests use it at once, they share one
 * store read (src/store/single-flight.ts): counted with MONITOR on a private redis-server. Before,
 * 32 concurrent requests on one session made 32 GETs and then 32 activity writes.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Sessions } from '../../src/authn/sessions.js'
import { DeviceInventory } from '../../src/device-trust/inventory.js'
import { MemoryStore, RedisStore, SingleFlight, type DeviceRecord, type SessionRecord } from '../../src/store/index.js'
import { startRedis } from '../helpers/redis.js'

const redis = await startRedis()
const store = new RedisStore({ redis: redis.url, key_prefix: 'sf:', store_outage_grace: 30_000 })
await store.connect()
t.teardown(async () => { await store.close(); await redis.close() })

async function monitored<T> (fn: () => Promise<T>): Promise<{ result: T; commands: string[][] }> {
  const client = new Redis(redis.url)
  const monitor = await client.monitor()
  const commands: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => { commands.push(args) })
  const result = await fn()
  await client.ping() // MONITOR lines arrive before the answer to a later command
  await new Promise((resolve) => setTimeout(resolve, 50))
  monitor.disconnect()
  client.disconnect()
  return { result, commands }
}

t.test('32 concurrent lookups of a session not in the cache: one GET, one activity write', async (t) => {
  let now = Date.now()
  const sessions = new Sessions(store, { lifetimeMs: 3_600_000, idleMs: 3_600_000, outageGraceMs: 30_000 }, 1000, () => now)
  const record = sessions.prepare({ sub: 'u1', email: 'u1@example.com', email_verified: true, groups: [], claims: {}, tokens: '' })
  await store.putSession(record, 3_600_000)
  // A minute later: the activity is due to be recorded, and nothing is cached on this replica.
  now += 61_000
  const { result, commands } = await monitored(async () => await Promise.all(Array.from({ length: 32 }, async () => await sessions.lookup(record.id))))
  t.ok(result.every((r) => r.status === 'ok'), 'all 32 found the session')
  const ours = commands.filter((c) => c[1]?.endsWith(`session:${record.id}`))
  t.same(ours.map((c) => c[0]?.toLowerCase()), ['get', 'get', 'set'], 'one read, then one activity touch (its read and its write)')
  t.equal(sessions.cached(record.id)?.status, 'ok', 'and it is cached now')
})

t.test('32 concurrent lookups of a device not in the cache: one GET', async (t) => {
  const inventory = new DeviceInventory(store, { outageGraceMs: 30_000 })
  const now = Date.now()
  const device: DeviceRecord = { id: 'laptop-1', owner: 'u1@example.com', cert_fingerprints: [], public_keys: [], managed: true, corp_owned: true, posture: null, status: 'active', created_at: now, updated_at: now } as unknown as DeviceRecord
  await store.putDevice(device)
  const { result, commands } = await monitored(async () => await Promise.all(Array.from({ length: 32 }, async () => await inventory.byId('laptop-1'))))
  t.ok(result.every((r) => r.status === 'ok'), 'all 32 found the device')
  t.equal(commands.filter((c) => c[0]?.toLowerCase() === 'get' && c[1]?.endsWith('laptop-1')).length, 1, 'one GET')
})

t.test('SingleFlight: shared while pending, a new read once settled, failures shared too', async (t) => {
  const sf = new SingleFlight<number>()
  let reads = 0
  const read = async (): Promise<number> => { reads++; await new Promise((resolve) => setTimeout(resolve, 10)); return reads }
  const [a, b] = await Promise.all([sf.run('k', read), sf.run('k', read)])
  t.same([a, b, reads], [1, 1, 1])
  t.equal(await sf.run('k', read), 2, 'settled: the next caller reads again')
  t.equal(await sf.run('other', read), 3, 'keys are separate')
  const failing = async (): Promise<number> => { reads++; throw new Error('store down') }
  const results = await Promise.allSettled([sf.run('f', failing), sf.run('f', failing)])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'])
  t.equal(reads, 4, 'one failing read for both')
  t.equal(await sf.run('f', read), 5, 'a failure is not remembered')
})

/**
 * The real in-memory store, with its next read held back like a slow network round trip, so an
 * event can arrive while the read is under way.
 */
class SlowStore extends MemoryStore {
  private gate: Promise<void> | null = null
  private open: () => void = () => {}
  holdNextRead (): void { this.gate = new Promise((resolve) => { this.open = resolve }) }
  release (): void { this.open() }
  private async held (): Promise<void> { const g = this.gate; this.gate = null; if (g !== null) await g }
  override async getSession (id: string): Promise<SessionRecord | null> { const r = await super.getSession(id); await this.held(); return r }
  override async getDevice (id: string): Promise<DeviceRecord | null> { const r = await super.getDevice(id); await this.held(); return r }
}
const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('a session revoked while it is being read: a later request reads again, and nothing stale is cached', async (t) => {
  const slow = new SlowStore()
  const sessions = new Sessions(slow, { lifetimeMs: 3_600_000, idleMs: 3_600_000, outageGraceMs: 30_000 })
  const record = sessions.prepare({ sub: 'u2', email: 'u2@example.com', email_verified: true, groups: [], claims: {}, tokens: '' })
  await slow.putSession(record, 3_600_000)
  slow.holdNextRead()
  const before = sessions.lookup(record.id) // under way: read, then held
  await tick()
  await sessions.revoke(record.id) // deleted, and the event published
  await tick() // the event arrives
  const after = sessions.lookup(record.id)
  slow.release()
  t.equal((await before).status, 'ok', 'the request that was already waiting gets what was read for it')
  t.equal((await after).status, 'none', 'a request after the revocation does not share that read')
  t.equal(sessions.cached(record.id), undefined, 'the stale read is not cached')
  t.equal((await sessions.lookup(record.id)).status, 'none')
})

t.test('a device changed while it is being read: a later request reads again', async (t) => {
  const slow = new SlowStore()
  const inventory = new DeviceInventory(slow, { outageGraceMs: 30_000 })
  const now = Date.now()
  const device = { id: 'laptop-2', owner: 'u2@example.com', cert_fingerprints: [], public_keys: [], managed: true, corp_owned: true, posture: null, status: 'active', created_at: now, updated_at: now } as unknown as DeviceRecord
  await slow.putDevice(device)
  slow.holdNextRead()
  const before = inventory.byId('laptop-2')
  await tick()
  await slow.putDevice({ ...device, status: 'revoked' } as DeviceRecord)
  await slow.publish({ type: 'device-changed', id: 'laptop-2' })
  await tick()
  const after = inventory.byId('laptop-2')
  slow.release()
  const a = await before
  const b = await after
  t.equal(a.status === 'ok' ? a.record.status : a.status, 'active', 'the request already waiting gets what was read for it')
  t.equal(b.status === 'ok' ? b.record.status : b.status, 'revoked', 'a request after the change reads the changed record')
})
