#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` via `prepare`).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'

// No allocation-site pretenuring, set before any of Moatless is loaded. V8 allocates an
// allocation site's objects straight in the old generation once most of them have outlived a
// minor GC. A proxy's per-request objects live for a millisecond, yet in one bench run V8 did
// this in both `serve` processes started under load beside another proxy: each request then
// left ~13 KB in the old generation, minor GCs took 10-19 ms instead of ~1, the heap grew 3 MB
// per minor GC until a major one, and p99 at 500 req/s was 11-15 ms against bare's 7-8.
// With the flag, no process did (benchmarks/NOTES-hot-path.md, seventh round).
v8.setFlagsFromString('--no-allocation-site-pretenuring')

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('moatless: dist/ is missing; run `npm run build` first\n')
  process.exit(1)
}
await import(entry.href)
