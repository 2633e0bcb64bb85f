// What makes the tail of a latency side-by-side run: reads the request dumps of load.mjs
// (LOAD_DUMP) and, when present, the GC pauses of every process (gc-pauses.mjs), and prints for
// each run and each side: p50 / p99, how many of its slowest 1 % were slow at the other side too
// (a stall both shared), how many overlap a GC pause of the load generator or the origin, and
// the median per-request difference overall, in the tail and outside it.
//   NODE_OPTIONS=--import=$PWD/benchmarks/gc-pauses.mjs LOAD_DUMP=/tmp/dump/run \
//     BENCH_PHASES=load BENCH_TARGETS=bare,session BENCH_ROUNDS=1 BENCH_SIDE_RUNS=3 npx tsx benchmarks/run.ts
//   node benchmarks/tail.mjs /tmp/dump [/tmp/gc-pauses]
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const [dumpDir, gcDir = '/tmp/gc-pauses'] = process.argv.slice(2)
if (dumpDir === undefined) throw new Error('usage: node benchmarks/tail.mjs DUMP_DIR [GC_PAUSES_DIR]')

const kindOf = (argv) => argv.includes('moatless.js') ? 'moatless' : argv.includes('bare-proxy') ? 'bare' : argv.includes('load.mjs') ? 'load' : argv.includes('upstream') ? 'origin' : 'other'
const pauses = []
let gcFiles = []
try { gcFiles = readdirSync(gcDir).filter((f) => f.endsWith('.jsonl')) } catch { /* no GC pauses recorded */ }
for (const f of gcFiles) {
  const [head, ...rest] = readFileSync(join(gcDir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l))
  pauses.push({ pid: Number(f.split('.')[0]), kind: kindOf(head.argv), events: rest })
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
const median = (xs) => xs.length === 0 ? NaN : pct([...xs].sort((a, b) => a - b), 50)
const f2 = (x) => Number.isNaN(x) ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(3)}`

const dumps = readdirSync(dumpDir).filter((f) => f.endsWith('.json')).sort((a, b) => Number(a.split('.').at(-2)) - Number(b.split('.').at(-2)))
for (const f of dumps) {
  const { urls, rows } = JSON.parse(readFileSync(join(dumpDir, f), 'utf8'))
  const loadPid = Number(f.split('.').at(-2))
  const by = [new Map(), new Map()]
  for (const [i, side, at, ms] of rows) by[side].set(i, { at, ms })
  const start = Math.min(...rows.map((r) => r[2]))
  const end = Math.max(...rows.map((r) => r[2] + r[3]))
  // The load generator of this run and every other process with a pause in the run's window.
  const inWindow = pauses
    .filter((p) => p.kind !== 'load' || p.pid === loadPid)
    .map((p) => ({ ...p, events: p.events.filter(([at]) => at >= start - 50 && at <= end) }))
    .filter((p) => p.events.length > 0)
  const overlaps = (kind, at, ms) => inWindow.some((p) => p.kind === kind && p.events.some(([s, d]) => s < at + ms && s + d > at))
  console.log(`${f}: ${urls.join(' | ')}, ${((end - start) / 1000).toFixed(1)} s`)
  for (const p of inWindow) console.log(`  GC ${p.kind} (pid ${p.pid}): ${p.events.length} pauses, median ${median(p.events.map((e) => e[1])).toFixed(2)} ms, max ${Math.max(...p.events.map((e) => e[1])).toFixed(2)} ms`)
  for (const side of [0, 1]) {
    const other = by[1 - side]
    const lat = [...by[side].values()].map((v) => v.ms).sort((a, b) => a - b)
    const otherLat = [...other.values()].map((v) => v.ms).sort((a, b) => a - b)
    const p99 = pct(lat, 99)
    const otherP95 = pct(otherLat, 95)
    const tail = [...by[side]].filter(([, v]) => v.ms >= p99)
    const shared = tail.filter(([i]) => (other.get(i)?.ms ?? 0) >= otherP95).length
    const diff = (ids) => median(ids.filter((i) => other.has(i)).map((i) => by[side].get(i).ms - other.get(i).ms))
    const tailIds = tail.map(([i]) => i)
    const restIds = [...by[side].keys()].filter((i) => by[side].get(i).ms < p99)
    console.log(`  side ${side} ${urls[side]}: p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms; slowest 1 %: ${tail.length}, of which slow at the other side too ${shared}, during a GC of the load generator ${tail.filter(([, v]) => overlaps('load', v.at, v.ms)).length}, of the origin ${tail.filter(([, v]) => overlaps('origin', v.at, v.ms)).length}; minus the other side per request (median): all ${f2(diff([...by[side].keys()]))} ms, slowest 1 % ${f2(diff(tailIds))} ms, the rest ${f2(diff(restIds))} ms`)
  }
}
