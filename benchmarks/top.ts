/**
 * Summarizes a .cpuprofile (benchmarks/profile.ts, or node --cpu-prof):
 *   npx tsx benchmarks/top.ts FILE [N]
 * prints self time by where the code lives (our src/, each package, Node internals, GC,
 * idle), then the N functions (default 40) with the most self time. Code run through tsx has
 * no line breaks, so a function there is told apart by its column; profile the compiled dist/
 * (PROFILE_DIST=1) for real line numbers.
 */
import { readFileSync } from 'node:fs'

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; hitCount: number }
const profile = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as { nodes: Node[] }

function where (url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg !== null) return pkg[1] as string
  if (url.startsWith('node:')) return 'node internals'
  if (/\/(src|dist)\//.test(url)) return 'moatless'
  return url.replace(/^file:\/\/.*\/main\//, '')
}

const self = new Map<string, number>()
const bySource = new Map<string, number>()
let total = 0
for (const n of profile.nodes) {
  const f = n.callFrame
  const file = f.url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*\/main\//, '')
  const at = f.lineNumber === 0 && f.columnNumber > 0 ? `1:${f.columnNumber + 1}` : String(f.lineNumber + 1)
  const key = `${f.functionName || '(anonymous)'} ${file}:${at}`
  self.set(key, (self.get(key) ?? 0) + n.hitCount)
  const src = where(f.url, f.functionName)
  bySource.set(src, (bySource.get(src) ?? 0) + n.hitCount)
  total += n.hitCount
}
const pct = (v: number): string => `${((v / total) * 100).toFixed(1).padStart(5)}%`
console.log('self time by source:')
for (const [k, v] of [...bySource.entries()].sort((a, b) => b[1] - a[1])) if (v / total >= 0.001) console.log(`${pct(v)}  ${k}`)
console.log('\nfunctions by self time:')
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 40))
for (const [k, v] of rows) console.log(`${pct(v)}  ${k}`)
