/**
 * When a cached session or device expires while many requests use it at once, they share one
 * store read (src/store/single-flight.ts): counted with MONITOR on a private redis-server. Before,
 * 32 concurrent requests on one session made 32 GETs and then 32 activity writes.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Sessions } from '../../src/authn/sessions.js'
import { DeviceInventory } from '../../src/device-trust/inventory.js'
import { RedisStore, SingleFlight, type DeviceRecord } from '../../src/store/index.js'
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
