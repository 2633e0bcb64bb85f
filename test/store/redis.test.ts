import t from 'tap'
import { RedisStore } from '../../src/store/index.js'
import { startRedis } from '../helpers/redis.js'
import { storeContract } from './contract.js'

const redis = await startRedis()
const stores: RedisStore[] = []
t.teardown(async () => {
  for (const s of stores) await s.close()
  await redis.close()
})

let k = 0
storeContract(t, async () => {
  const store = new RedisStore({ redis: redis.url, key_prefix: `c${k++}:`, store_outage_grace: 30_000 })
  t.equal(await store.connect(), true)
  stores.push(store)
  return { store, advance: async (ms) => { await new Promise((resolve) => setTimeout(resolve, ms)) } }
}, () => Date.now())

t.test('outage: commands fail fast, health flips, and recovery is announced', async (t) => {
  const store = new RedisStore({ redis: redis.url, key_prefix: 'outage:', store_outage_grace: 30_000 })
  stores.push(store)
  await store.connect()
  let recovered = 0
  store.onRecover(() => { recovered++ })
  await redis.stop()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(store.healthy, false)
  const started = Date.now()
  await t.rejects(store.getSession('x'))
  t.ok(Date.now() - started < 1000, 'failed fast, no hang')
  t.equal(await store.ping(), false)
  await redis.start()
  for (let i = 0; i < 50 && !store.healthy; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(store.healthy, true, 'reconnected by itself')
  t.equal(recovered, 1)
  t.equal(await store.getSession('x'), null)
})
