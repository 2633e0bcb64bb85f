/**
 * The decision sampler: at most MAX_PER_INTERVAL (50) decisions per interval, written to the
 * store in one batch, serialized a slice at a time so that requests arriving during a flush are
 * not kept waiting behind the whole batch. Real store (MemoryStore); the requests are what the
 * stages leave on `req.moatless`.
 */
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { DecisionSampler, MAX_PER_INTERVAL } from '../../src/proxy/decision-samples.js'
import { MemoryStore } from '../../src/store/index.js'

const identity = Object.freeze({ sub: 'user-1', email: 'alice@example.com', email_verified: true, groups: Object.freeze(['engineering']) as string[], claims: Object.freeze({ name: 'Alice' }), via: 'session' as const })
const request = (i: number): FastifyRequest => ({
  raw: { method: 'GET' },
  moatless: {
    app: { name: 'wiki' },
    decision: { decision: 'allow', rule: 'engineers', reasons: [] },
    path: `/docs/${i}`,
    clientIp: '10.0.0.7',
    identity,
    device: { id: null, trust: 'none', trustRank: 0 }
  }
}) as unknown as FastifyRequest

t.test('a flush writes every sample taken, at most MAX_PER_INTERVAL an interval', async (t) => {
  t.equal(MAX_PER_INTERVAL, 50)
  const store = new MemoryStore()
  const sampler = new DecisionSampler(store, 'replica-1', 3_600_000)
  t.teardown(async () => { sampler.close(); await store.close() })
  for (let i = 0; i < 250; i++) sampler.add(request(i))
  await sampler.flush()
  const written = (await store.recentDecisionSamples(1000)).map((s) => JSON.parse(s) as Record<string, unknown>)
  t.equal(written.length, 50, 'the first 50 of the interval')
  t.same(written.map((s) => s.path).sort(), Array.from({ length: 50 }, (_, i) => `/docs/${i}`).sort())
  t.match(written[0], { replica: 'replica-1', app: 'wiki', method: 'GET', source_ip: '10.0.0.7', decision: 'allow', rule: 'engineers', identity: { sub: 'user-1', groups: ['engineering'], via: 'session' }, device: { id: null, trust: 'none' } })
  await sampler.flush()
  t.equal((await store.recentDecisionSamples(1000)).length, 50, 'nothing new: nothing written')
  sampler.add(request(999))
  await sampler.flush()
  t.equal((await store.recentDecisionSamples(1000)).length, 51, 'the next interval samples again')
})

t.test('a flush lets the event loop turn while it serializes', async (t) => {
  const store = new MemoryStore()
  const sampler = new DecisionSampler(store, 'replica-1', 3_600_000)
  t.teardown(async () => { sampler.close(); await store.close() })
  for (let i = 0; i < 250; i++) sampler.add(request(i))
  let turns = 0
  let seenBeforeWrite: number | null = null
  const turn = (): void => {
    turns++
    void store.recentDecisionSamples(1000).then((s) => { if (s.length === 0) seenBeforeWrite = turns })
    if (turns < 100) setImmediate(turn)
  }
  setImmediate(turn)
  await sampler.flush()
  // 50 samples, 25 a turn: the loop turns at least once between the two slices.
  t.ok(seenBeforeWrite !== null && seenBeforeWrite >= 1, `the loop turned ${String(seenBeforeWrite)} times before the batch was written`)
  t.equal((await store.recentDecisionSamples(1000)).length, MAX_PER_INTERVAL)
})
