// The default destination (src/log.ts `stdout()`): lines collected in a 64 KiB buffer and
// handed to sonic-boom when it is full, every 200 ms, and at exit. A child process writes
// through it to a real pipe; every line must arrive whole, once, in order.
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'

const LOG = pathToFileURL(join(process.cwd(), 'src/log.ts')).href

function run (script: string): Promise<{ code: number | null; out: string; err: string; firstChunkAt: number | null; started: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'moatless-log-'))
  const file = join(dir, 'child.mjs')
  writeFileSync(file, script)
  const { NODE_OPTIONS: _hooks, ...env } = process.env
  return new Promise((resolve, reject) => {
    const started = Date.now()
    let firstChunkAt: number | null = null
    const child = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...env, MOATLESS_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => { firstChunkAt ??= Date.now(); out.push(d) })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, out: Buffer.concat(out).toString('utf8'), err, firstChunkAt, started }))
  })
}

t.test('every line arrives whole and in order: multi-byte text, batches, a line larger than a batch', async (t) => {
  const r = await run(`
    import { createLogger, writeInfoLine } from ${JSON.stringify(LOG)}
    const log = createLogger()
    for (let i = 0; i < 3000; i++) {
      if (i === 1500) log.info({ big: 'x'.repeat(100000) + 'é' }, 'huge')
      writeInfoLine(log, { i, s: 'é日\\ud83d\\ude00' + 'y'.repeat(i % 300) }, 'line')
    }
    process.exit(0)
  `)
  t.equal(r.code, 0, r.err)
  const lines = r.out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
  const numbered = lines.filter((l) => l.msg === 'line')
  t.equal(numbered.length, 3000, 'every line, once')
  t.ok(numbered.every((l, i) => l.i === i && l.s === 'é日\ud83d\ude00' + 'y'.repeat(i % 300)), 'in order, text intact')
  const huge = lines.findIndex((l) => l.msg === 'huge')
  t.equal((lines[huge]?.big as string | undefined)?.length, 100001, 'the line larger than a batch arrives whole')
  t.equal(lines[huge - 1]?.i, 1499, 'after the lines written before it')
  t.equal(lines[huge + 1]?.i, 1500, 'and before the lines written after it')
})

t.test('a quiet process line is written within the 200 ms interval, not held until exit', async (t) => {
  const r = await run(`
    import { createLogger } from ${JSON.stringify(LOG)}
    const log = createLogger()
    log.info({ n: 1 }, 'one line')
    setTimeout(() => process.exit(0), 1500)
  `)
  t.equal(r.code, 0, r.err)
  t.match(r.out, /"msg":"one line"/)
  t.ok(r.firstChunkAt !== null, 'output arrived')
  // Arrived long before the exit at 1.5 s (start-up included).
  t.ok((r.firstChunkAt as number) - r.started < 1400, `first output after ${(r.firstChunkAt as number) - r.started} ms`)
})
