// Preloaded (node --import) into the proxy for the sign-in measurement only: records how long
// the proxy waits on each outgoing HTTP request to one origin (the IdP), from undici's
// diagnostics channels (used by both Node's fetch and the undici package): request created ->
// response complete (trailers) or failed. One JSON line per request, appended synchronously to
// $BENCH_TRACE_FILE. Nothing in the proxy's own code changes.
import { subscribe } from 'node:diagnostics_channel'
import { appendFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

const file = process.env.BENCH_TRACE_FILE
const origin = process.env.BENCH_TRACE_ORIGIN
const open = new WeakMap()
if (file !== undefined && origin !== undefined) {
  subscribe('undici:request:create', ({ request }) => {
    if (String(request.origin) === origin) open.set(request, performance.now())
  })
  const done = (failed) => ({ request }) => {
    const start = open.get(request)
    if (start === undefined) return
    open.delete(request)
    appendFileSync(file, JSON.stringify({ path: String(request.path).split('?')[0], method: request.method, ms: performance.now() - start, failed }) + '\n')
  }
  subscribe('undici:request:trailers', done(false))
  subscribe('undici:request:error', done(true))
}
