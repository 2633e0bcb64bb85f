/**
 * benchmarks/load.mjs with `rate`: the bench's fixed-rate runs. Requests must go out at even
 * intervals whatever the answers (open loop), so that a stall of the server is counted by
 * every request due during it; autocannon's own rate limit sent each second's share back to
 * back, which measured queueing instead.
 */
import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'

import t from 'tap'

const run = promisify(execFile)

interface LoadRun { rps: number; total: number; sent: number; ok: number; p50: number; p99: number; non2xx: number; errors: number }

t.test('rate: even arrivals, a stall counted by every request due in it', async (t) => {
  const RATE = 200
  const SECONDS = 2
  const STALL_AT = 300 // the 100th measured request: load.mjs first sends RATE unrecorded
  const STALL_MS = 200
  const arrivals: number[] = []
  const server = createServer((req, res) => {
    arrivals.push(performance.now())
    if (arrivals.length === STALL_AT) {
      // The whole server stops: nothing is read or answered meanwhile.
      const until = performance.now() + STALL_MS
      while (performance.now() < until) { /* busy */ }
    }
    res.end(req.url === '/page' ? 'x'.repeat(1024) : 'no')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo

  const opts = { url: `http://127.0.0.1:${port}/page`, headers: { accept: 'text/plain' }, connections: 4, duration: SECONDS, rate: RATE }
  const { stdout } = await run(process.execPath, ['benchmarks/load.mjs', JSON.stringify(opts)])
  const r = JSON.parse(stdout) as LoadRun

  t.equal(r.total, RATE * SECONDS, 'measured requests: rate x duration')
  t.equal(r.sent, RATE + RATE * SECONDS, 'sent: the unrecorded first second too')
  t.equal(arrivals.length, r.sent, 'the server saw every request sent')
  t.equal(r.ok, r.total, 'every measured request answered 2xx')
  t.equal(r.errors + r.non2xx, 0)
  t.ok(r.rps > RATE * 0.9 && r.rps < RATE * 1.1, `req/s ${r.rps} is the rate asked for`)

  // ~RATE * STALL_MS / 1000 = 40 requests fall due during the stall, 10 % of those measured:
  // each waits for the rest of it, so p99 shows the stall while p50 does not.
  t.ok(r.p99 > STALL_MS / 2, `p99 ${r.p99} ms counts the ${STALL_MS} ms stall`)
  t.ok(r.p50 < STALL_MS / 4, `p50 ${r.p50} ms: most requests were not held`)

  // Sent at even intervals, not in bursts: the median gap between arrivals (the stall and the
  // catch-up after it aside) is about 1000 / RATE = 5 ms. A burst at full speed, as
  // autocannon's overallRate sends, has gaps of a fraction of a millisecond.
  const measured = arrivals.slice(RATE)
  const gaps = measured.slice(1).map((a, i) => a - (measured[i] as number)).sort((a, b) => a - b)
  const median = gaps[Math.floor(gaps.length / 2)] as number
  t.ok(median > 2.5 && median < 10, `median gap between arrivals ${median.toFixed(2)} ms, about ${1000 / RATE} ms`)
})

t.test('rate with a cookie file is refused', async (t) => {
  const opts = { url: 'http://127.0.0.1:1/page', headers: {}, connections: 1, duration: 1, rate: 10, cookieFile: '/dev/null' }
  await t.rejects(run(process.execPath, ['benchmarks/load.mjs', JSON.stringify(opts)]), /rate and cookieFile do not go together/)
})

t.test('pair: the same instants for two targets, a stall of one counted by it alone', async (t) => {
  const RATE = 200
  const SECONDS = 2
  const STALL_AT = 300 // the 100th measured request
  const STALL_MS = 200
  const arrivals: Record<'a' | 'b', number[]> = { a: [], b: [] }
  let stallUntil = 0
  const serve = (side: 'a' | 'b') => createServer((req, res) => {
    const now = performance.now()
    arrivals[side].push(now)
    const answer = (): void => { res.end('x'.repeat(1024)) }
    if (side === 'b') { answer(); return }
    // a alone stops answering for STALL_MS: what arrives meanwhile is answered at its end.
    if (arrivals.a.length === STALL_AT) stallUntil = now + STALL_MS
    if (now < stallUntil) setTimeout(answer, stallUntil - now)
    else answer()
  })
  const servers = { a: serve('a'), b: serve('b') }
  for (const s of Object.values(servers)) await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of Object.values(servers)) s.close() })
  const url = (side: 'a' | 'b'): string => `http://127.0.0.1:${(servers[side].address() as AddressInfo).port}/page`

  const opts = { url: url('a'), headers: { accept: 'text/plain' }, connections: 4, duration: SECONDS, rate: RATE, pair: { url: url('b') } }
  const { stdout } = await run(process.execPath, ['benchmarks/load.mjs', JSON.stringify(opts)])
  const r = JSON.parse(stdout) as LoadRun & { pair: LoadRun }

  for (const [name, x] of [['a', r], ['b', r.pair]] as const) {
    t.equal(x.total, RATE * SECONDS, `${name}: measured requests, rate x duration`)
    t.equal(x.ok, x.total, `${name}: every measured request answered 2xx`)
    t.equal(arrivals[name].length, x.sent, `${name}: the server saw every request sent`)
  }
  t.ok(r.p99 > STALL_MS / 2, `a's p99 ${r.p99} ms counts its ${STALL_MS} ms stall`)
  t.ok(r.pair.p99 < STALL_MS / 4, `b's p99 ${r.pair.p99} ms: b was not held by a's stall`)

  // Request i reaches both at about the same instant (a's stall aside, which holds only answers).
  const apart = arrivals.a.map((at, i) => Math.abs(at - (arrivals.b[i] as number))).sort((x, y) => x - y)
  const median = apart[Math.floor(apart.length / 2)] as number
  t.ok(median < 1000 / RATE / 4, `median time between a request's arrivals at a and at b ${median.toFixed(3)} ms`)
})

t.test('pair: the per-request difference pairs each request with its twin, not the two distributions', async (t) => {
  const RATE = 200
  const SECONDS = 3
  const DELAY_MS = 10
  // a holds every third request (0, 3, 6...) and b every third one after it (1, 4, 7...): both
  // sides see the same latencies, so their percentiles agree, but request by request a is
  // 10 ms behind in a third of the pairs, 10 ms ahead in another and even in the last.
  const counts = { a: 0, b: 0 }
  const serve = (side: 'a' | 'b', held: number) => createServer((_req, res) => {
    const i = counts[side]++
    const answer = (): void => { res.end('x') }
    if (i % 3 === held) setTimeout(answer, DELAY_MS)
    else answer()
  })
  const servers = { a: serve('a', 0), b: serve('b', 1) }
  for (const s of Object.values(servers)) await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of Object.values(servers)) s.close() })
  const url = (side: 'a' | 'b'): string => `http://127.0.0.1:${(servers[side].address() as AddressInfo).port}/page`
  // Both servers count the unrecorded first second's requests too, so the pattern is shifted
  // alike on both sides.
  const opts = { url: url('a'), headers: {}, connections: 8, duration: SECONDS, rate: RATE, pair: { url: url('b') } }
  const { stdout } = await run(process.execPath, ['benchmarks/load.mjs', JSON.stringify(opts)])
  const r = JSON.parse(stdout) as LoadRun & { pair: LoadRun; paired: { requests: number; p50: number; p90: number } }
  t.equal(r.paired.requests, RATE * SECONDS, 'every measured request paired')
  t.ok(Math.abs(r.paired.p50) < DELAY_MS / 4, `median difference ${r.paired.p50} ms: even in the middle third`)
  t.ok(r.paired.p90 > DELAY_MS * 0.8, `p90 difference ${r.paired.p90} ms: the pairs where a held its request`)
  t.ok(Math.abs(r.p99 - r.pair.p99) < DELAY_MS / 2, `the two p99s agree (${r.p99} / ${r.pair.p99} ms): what the pairing sees, the percentiles cannot`)
})

t.test('pair without rate is refused', async (t) => {
  const opts = { url: 'http://127.0.0.1:1/page', headers: {}, connections: 1, duration: 1, pair: { url: 'http://127.0.0.1:2/page' } }
  await t.rejects(run(process.execPath, ['benchmarks/load.mjs', JSON.stringify(opts)]), /pair needs rate/)
})
