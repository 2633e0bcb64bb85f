// One load run, in its own process (pinned apart from the proxy where the machine allows).
//
// argv[2]: JSON autocannon options, plus:
//   tls: { ca, cert, key } file paths (PEM), read here and passed as autocannon tlsOptions
//        (autocannon itself never verifies the server certificate: rejectUnauthorized false)
//   cookieFile: a file with one Cookie header value per line; each request takes the next line
//        (round robin), so every request can carry a different session (RSS phase)
//
// Latency percentiles are computed here from every 2xx response time at full (sub-ms)
// resolution; autocannon's own histogram only resolves whole milliseconds.
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

const { tls, cookieFile, ...opts } = JSON.parse(process.argv[2])
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
const instance = autocannon({ ...opts, renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false })
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  if (statusCode < 200 || statusCode >= 300) return
  if (n === samples.length) { const bigger = new Float64Array(samples.length * 2); bigger.set(samples); samples = bigger }
  samples[n++] = responseTime
})
const result = await instance
const sorted = samples.subarray(0, n).sort()
const pct = (p) => n === 0 ? NaN : Math.round(sorted[Math.min(n - 1, Math.floor((p / 100) * n))] * 1000) / 1000
process.stdout.write(JSON.stringify({
  rps: result.requests.average,
  total: result.requests.total,
  ok: n,
  duration_s: result.duration,
  p50: pct(50),
  p99: pct(99),
  non2xx: result.non2xx,
  status: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
  errors: result.errors,
  timeouts: result.timeouts
}))
