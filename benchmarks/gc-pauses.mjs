// Preload (`node --import ./benchmarks/gc-pauses.mjs`, or NODE_OPTIONS for every process of a
// bench run): appends this process's GC pauses to $GC_PAUSES_DIR/<pid>.jsonl (default
// /tmp/gc-pauses) as [start, ms since the epoch; duration ms; kind], after a first line naming
// the process. With load.mjs's LOAD_DUMP it lines each slow request up with the pauses of the
// proxies, the origin and the load generator (NOTES-hot-path.md, eleventh round).
import { appendFileSync, mkdirSync } from 'node:fs'
import { PerformanceObserver, performance } from 'node:perf_hooks'

const dir = process.env.GC_PAUSES_DIR ?? '/tmp/gc-pauses'
mkdirSync(dir, { recursive: true })
const file = `${dir}/${process.pid}.jsonl`
appendFileSync(file, JSON.stringify({ argv: process.argv.slice(1).join(' ').slice(0, 200) }) + '\n')
let pending = []
const flush = () => {
  if (pending.length === 0) return
  appendFileSync(file, pending.map((p) => JSON.stringify(p)).join('\n') + '\n')
  pending = []
}
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) pending.push([Math.round((performance.timeOrigin + e.startTime) * 1000) / 1000, Math.round(e.duration * 1000) / 1000, e.detail?.kind])
  if (pending.length >= 50) flush()
}).observe({ entryTypes: ['gc'] })
setInterval(flush, 2000).unref()
process.on('exit', flush)
