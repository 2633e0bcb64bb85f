import t from 'tap'
import { Redis } from 'ioredis'

import { startRedis } from '../helpers/redis.js'

t.test('redis-server starts, goes down, and comes back on the same port', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.close())
  t.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/)

  const client = new Redis(redis.url, { retryStrategy: () => 50, maxRetriesPerRequest: 1, lazyConnect: true })
  t.teardown(() => client.disconnect())
  const statuses: string[] = []
  client.on('close', () => statuses.push('close'))
  client.on('ready', () => statuses.push('ready'))
  client.on('error', () => {}) // reconnect attempts while the server is down

  await client.connect()
  t.equal(await client.ping(), 'PONG')
  await client.set('k', 'v')
  t.equal(await client.get('k'), 'v')

  await redis.stop()
  await t.rejects(client.get('k'), 'commands fail while the server is down')
  t.ok(statuses.includes('close'), 'the client saw the outage')

  await redis.start()
  await waitFor(() => client.status === 'ready', 5000)
  t.equal(await client.ping(), 'PONG', 'the client recovered by itself')
  t.equal(await client.get('k'), null, 'nothing was persisted')
  t.same(statuses.filter((s) => s === 'ready').length, 2)
})

t.test('two servers side by side, and stop/close are idempotent', async (t) => {
  const a = await startRedis()
  const b = await startRedis()
  t.not(a.port, b.port)
  await a.stop()
  await a.stop()
  await t.rejects(b.start(), /already running/)
  await a.close()
  await b.close()
  await b.close()
})

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}
