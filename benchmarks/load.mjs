// One load run, in its own process (pinned apart from the proxy where the machine allows).
//
// argv[2]: JSON autocannon options, plus:
//   tls: { ca, cert, key } file paths (PEM), read here and passed as autocannon tlsOptions
//        (autocannon itself never verifies the server certificate: rejectUnauthorized false)
//   cookieFile: a file with one Cookie header value per line; each request takes the next line
//        (round robin), so every request can carry a different session (RSS phase)
//
//   rate: requests per second, sent at even intervals whether or not earlier ones have been
//        answered (open loop, as wrk2 does), over `connections` connections: a fixed-rate run.
//        Not autocannon's overallRate, which lets each connection send its share of a second
//        back to back at the start of every second and then pause (autocannon 8
//        lib/httpClient.js, `reqsMadeThisSecond`): a burst at full speed, whose latency grows
//        with the proxy's CPU cost per request, like a saturated run's.
//   pair: { url, headers? } (with rate): a second target sent the same requests at the same
//        instants, from this process; its figures come as `pair` beside the first target's
//        (the latency side by side of the bench, see openLoop), and `paired`: the first
//        target's latency minus the second's for the same request, p50 and p90 over every
//        request both answered 2xx (what one target adds to each request, where the p99s of
//        the two compare their tails, which on a loaded VM are mostly stalls they share)
//
// LOAD_DUMP=PATH (environment, with pair): also write every request of the measured run to
// PATH.<pid>.json as [index, side, sent at (ms since the epoch), latency ms], to line the tail
// up with, e.g., each process's GC pauses (gc-pauses.mjs; NOTES-hot-path.md, eleventh round).
//
// Latency percentiles are computed here from every 2xx response time at full (sub-ms)
// resolution; autocannon's own histogram only resolves whole milliseconds.
import { readFileSync, writeFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { Pool } from 'undici'

const { tls, cookieFile, rate, pair, ...opts } = JSON.parse(process.argv[2])
if (tls !== undefined) {
  opts.tlsOptions = {
    ...(tls.ca === undefined ? {} : { ca: readFileSync(tls.ca) }),
    ...(tls.cert === undefined ? {} : { cert: readFileSync(tls.cert) }),
    ...(tls.key === undefined ? {} : { key: readFileSync(tls.key) })
  }
}
if (cookieFile !== undefined) {
  const cookies = readFileSync(cookieFile, 'utf8').split('\n').filter((l) => l !== '')
  let next = 0
  opts.requests = [{
    setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookies[next++ % cookies.length] } })
  }]
}

/** Latencies of 2xx answers, every one at full (sub-ms) resolution. */
class Samples {
  constructor () { this.v = new Float64Array(1 << 16); this.n = 0 }
  record (statusCode, ms) {
    if (statusCode < 200 || statusCode >= 300) return
    if (this.n === this.v.length) { const bigger = new Float64Array(this.v.length * 2); bigger.set(this.v); this.v = bigger }
    this.v[this.n++] = ms
  }

  summary (result) {
    const sorted = this.v.subarray(0, this.n).sort()
    const pct = (p) => percentile(sorted, p)
    return {
      rps: result.requests.average,
      total: result.requests.total,
      // every request sent, an open loop's unrecorded first second included (CPU per request)
      sent: result.requests.sent ?? result.requests.total,
      ok: this.n,
      duration_s: result.duration,
      p50: pct(50),
      p99: pct(99),
      non2xx: result.non2xx,
      status: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
      errors: result.errors,
      timeouts: result.timeouts
    }
  }
}

if (pair !== undefined && rate === undefined) throw new Error('load.mjs: pair needs rate')
const DUMP = process.env.LOAD_DUMP === undefined || process.env.LOAD_DUMP === '' ? undefined : []
const targets = [{ url: opts.url, headers: opts.headers, samples: new Samples() }, ...(pair === undefined ? [] : [{ url: pair.url, headers: pair.headers ?? opts.headers, samples: new Samples() }])]
const results = rate === undefined ? [await closedLoop(targets[0])] : await openLoop()
const [first, second] = results.map((r, i) => targets[i].samples.summary(r))
process.stdout.write(JSON.stringify(second === undefined ? first : { ...first, pair: second, paired: pairedDifference() }))

/** autocannon: every connection sends its next request as soon as the last is answered. */
async function closedLoop (target) {
  const instance = autocannon({ ...opts, renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false })
  instance.on('response', (_client, statusCode, _bytes, responseTime) => target.samples.record(statusCode, responseTime))
  return await instance
}

/**
 * Request i is sent at start + i / rate (the timer catches up on any it is late for), and its
 * latency runs from that call until the whole body is in, a wait for a free connection
 * included: a stall of the proxy delays every request due meanwhile, and each counts it.
 * The first second goes unrecorded: in it this process's own start (connecting, compiling
 * undici's code) held answers up to 60 ms.
 * With `pair`, request i goes to both targets at that instant (each over its own
 * `connections`), in turns first to one and first to the other: this process's own pauses
 * (its GC, its turn on the CPU) then fall on both alike, where two load processes paused
 * each on its own.
 */
async function openLoop () {
  if (cookieFile !== undefined) throw new Error('load.mjs: rate and cookieFile do not go together')
  const interval = 1000 / rate
  const total = opts.amount ?? Math.round(rate * opts.duration)
  // Per request of the measured run, each side's latency (NaN: not a 2xx answer).
  for (const t of targets) t.byRequest = new Float64Array(total).fill(NaN)
  const sides = targets.map((target) => {
    const url = new URL(target.url)
    return {
      target,
      path: url.pathname + url.search,
      pool: new Pool(url.origin, {
        connections: opts.connections,
        pipelining: 1,
        // autocannon's default: a request unanswered for 10 s counts as a timeout
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
        ...(opts.tlsOptions === undefined ? {} : { connect: { ...opts.tlsOptions, servername: opts.servername, rejectUnauthorized: false } })
      }),
      statusCodeStats: {},
      non2xx: 0,
      errors: 0,
      timeouts: 0
    }
  })
  const run = (total, measured) => new Promise((resolve) => {
    let sent = 0; let done = 0
    const start = performance.now()
    const finish = () => { if (++done === total * sides.length) resolve((performance.now() - start) / 1000) }
    const send = (side, i) => {
      const t0 = performance.now()
      side.pool.request({ method: 'GET', path: side.path, headers: side.target.headers }).then(async (res) => {
        await res.body.dump()
        if (!measured) return
        const ms = performance.now() - t0
        side.target.samples.record(res.statusCode, ms)
        if (res.statusCode >= 200 && res.statusCode < 300) side.target.byRequest[i] = ms
        if (DUMP !== undefined) DUMP.push([i, targets.indexOf(side.target), Math.round((performance.timeOrigin + t0) * 1000) / 1000, Math.round(ms * 1000) / 1000])
        const s = side.statusCodeStats[res.statusCode] ??= { count: 0 }
        s.count++
        if (res.statusCode < 200 || res.statusCode >= 300) side.non2xx++
      }, (err) => {
        if (!measured) return
        if (err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT') side.timeouts++
        else side.errors++
      }).finally(finish)
    }
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1)
      while (sent < due) {
        const i = sent++
        const flip = i % 2
        for (let k = 0; k < sides.length; k++) send(sides[(k + flip) % sides.length], i)
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()))
    }
    tick()
  })
  const warm = Math.ceil(rate)
  await run(warm, false)
  const seconds = await run(total, true)
  if (DUMP !== undefined && sides.length === 2) writeFileSync(`${process.env.LOAD_DUMP}.${process.pid}.json`, JSON.stringify({ urls: targets.map((t) => t.url), rows: DUMP }))
  await Promise.all(sides.map((side) => side.pool.close()))
  return sides.map((side) => ({ requests: { average: total / seconds, total, sent: warm + total }, duration: seconds, non2xx: side.non2xx, statusCodeStats: side.statusCodeStats, errors: side.errors, timeouts: side.timeouts }))
}

/** With `pair`: the first target's latency minus the second's, request by request (see `paired` above). */
function pairedDifference () {
  const [a, b] = targets
  const d = []
  for (let i = 0; i < a.byRequest.length; i++) {
    const x = a.byRequest[i] - b.byRequest[i]
    if (!Number.isNaN(x)) d.push(x)
  }
  d.sort((x, y) => x - y)
  return { requests: d.length, p50: percentile(d, 50), p90: percentile(d, 90) }
}

/** The p-th percentile of ascending `sorted`, rounded to the microsecond (NaN when empty). */
function percentile (sorted, p) {
  const n = sorted.length
  return n === 0 ? NaN : Math.round(sorted[Math.min(n - 1, Math.floor((p / 100) * n))] * 1000) / 1000
}
