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
//
// Latency percentiles are computed here from every 2xx response time at full (sub-ms)
// resolution; autocannon's own histogram only resolves whole milliseconds.
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { Pool } from 'undici'

const { tls, cookieFile, rate, ...opts } = JSON.parse(process.argv[2])
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

let samples = new Float64Array(1 << 16)
let n = 0
const record = (statusCode, ms) => {
  if (statusCode < 200 || statusCode >= 300) return
  if (n === samples.length) { const bigger = new Float64Array(samples.length * 2); bigger.set(samples); samples = bigger }
  samples[n++] = ms
}
const result = rate === undefined ? await closedLoop() : await openLoop()
const sorted = samples.subarray(0, n).sort()
const pct = (p) => n === 0 ? NaN : Math.round(sorted[Math.min(n - 1, Math.floor((p / 100) * n))] * 1000) / 1000
process.stdout.write(JSON.stringify({
  rps: result.requests.average,
  total: result.requests.total,
  // every request sent, an open loop's unrecorded first second included (CPU per request)
  sent: result.requests.sent ?? result.requests.total,
  ok: n,
  duration_s: result.duration,
  p50: pct(50),
  p99: pct(99),
  non2xx: result.non2xx,
  status: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
  errors: result.errors,
  timeouts: result.timeouts
}))

/** autocannon: every connection sends its next request as soon as the last is answered. */
async function closedLoop () {
  const instance = autocannon({ ...opts, renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false })
  instance.on('response', (_client, statusCode, _bytes, responseTime) => record(statusCode, responseTime))
  return await instance
}

/**
 * Request i is sent at start + i / rate (the timer catches up on any it is late for), and its
 * latency runs from that call until the whole body is in, a wait for a free connection
 * included: a stall of the proxy delays every request due meanwhile, and each counts it.
 * The first second goes unrecorded: in it this process's own start (connecting, compiling
 * undici's code) held answers up to 60 ms.
 */
async function openLoop () {
  if (cookieFile !== undefined) throw new Error('load.mjs: rate and cookieFile do not go together')
  const url = new URL(opts.url)
  const pool = new Pool(url.origin, {
    connections: opts.connections,
    pipelining: 1,
    // autocannon's default: a request unanswered for 10 s counts as a timeout
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    ...(opts.tlsOptions === undefined ? {} : { connect: { ...opts.tlsOptions, servername: opts.servername, rejectUnauthorized: false } })
  })
  const interval = 1000 / rate
  const statusCodeStats = {}
  let non2xx = 0; let errors = 0; let timeouts = 0
  const run = (total, measured) => new Promise((resolve) => {
    let sent = 0; let done = 0
    const start = performance.now()
    const finish = () => { if (++done === total) resolve((performance.now() - start) / 1000) }
    const send = () => {
      const t0 = performance.now()
      pool.request({ method: 'GET', path: url.pathname + url.search, headers: opts.headers }).then(async (res) => {
        await res.body.dump()
        if (!measured) return
        record(res.statusCode, performance.now() - t0)
        const s = statusCodeStats[res.statusCode] ??= { count: 0 }
        s.count++
        if (res.statusCode < 200 || res.statusCode >= 300) non2xx++
      }, (err) => {
        if (!measured) return
        if (err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT') timeouts++
        else errors++
      }).finally(finish)
    }
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1)
      while (sent < due) { sent++; send() }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()))
    }
    tick()
  })
  const warm = Math.ceil(rate)
  await run(warm, false)
  const total = opts.amount ?? Math.round(rate * opts.duration)
  const seconds = await run(total, true)
  await pool.close()
  return { requests: { average: total / seconds, total, sent: warm + total }, duration: seconds, non2xx, statusCodeStats, errors, timeouts }
}
