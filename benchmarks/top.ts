/** Prints the functions with the most self time in a .cpuprofile (node --cpu-prof output). */
import { readFileSync } from 'node:fs'
interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number }
const profile = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as { nodes: Node[] }
const self = new Map<string, number>()
let total = 0
for (const n of profile.nodes) {
  const f = n.callFrame
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*\/main\//, '')}:${f.lineNumber + 1}`
  self.set(key, (self.get(key) ?? 0) + n.hitCount)
  total += n.hitCount
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 40))
for (const [k, v] of rows) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
