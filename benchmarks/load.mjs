// One load run, in its own process (pinned apart from the proxy where the machine allows).
import autocannon from 'autocannon'
const opts = JSON.parse(process.argv[2])
const result = await autocannon({ ...opts, renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false })
process.stdout.write(JSON.stringify({
  rps: result.requests.average,
  p50: result.latency.p50,
  p99: result.latency.p99,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts
}))
