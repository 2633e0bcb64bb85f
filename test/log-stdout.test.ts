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

function run (script: string): Promise<{ code: number | null; out: string; err: string; firstChunkAt: number | null }> {
  const dir = mkdtempSync(join(tmpdir(), 'moatless-log-'))
  const file = join(dir, 'child.mjs')
  writeFileSync(file, script)
  const { NODE_OPTIONS: _hooks, ...env } = process.env
  return new Promise((resolve, reject) => {
    let firstChunkAt: number | null = null
    const child = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...env, MOATLESS_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => { firstChunkAt ??= Date.now(); out.push(d) })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, out: Buffer.concat(out).toString('utf8'), err, firstChunkAt }))
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
    setTimeout(() => process.exit(0), 2000)
  `)
  t.equal(r.code, 0, r.err)
  t.match(r.out, /"msg":"one line"/)
  t.ok(r.firstChunkAt !== null, 'output arrived')
  // Long before the exit 2 s after the line was logged (measured from the line's own time, so
  // a slow start-up of the child does not count).
  const after = (r.firstChunkAt as number) - lineTime(r.out, 'one line')
  t.ok(after < 1000, `first output ${after} ms after the line was logged`)
})

/** When the child logged the line with message `msg` (its "time"; parent and child share the clock). */
function lineTime (out: string, msg: string): number {
  const line = out.split('\n').find((l) => l.includes(`"msg":"${msg}"`))
  return Date.parse((JSON.parse(line ?? '{}') as { time?: string }).time ?? '')
}

t.test('deferred lines (writeInfoLineSoon, writeInfoBodySoon): pino\'s bytes, in order with direct lines, the time of the call', async (t) => {
  const r = await run(`
    import { createLogger, writeInfoLineSoon, writeInfoBodySoon } from ${JSON.stringify(LOG)}
    const log = createLogger()
    const child = log.child({ component: 'c' })
    // Every fifth line (those compared with pino's below among them) formats its own fields.
    const body = (f) => ',"i":' + f.i + ',"s":' + JSON.stringify(f.s) + ',"n":' + JSON.stringify(f.n)
    for (let i = 0; i < 3000; i++) {
      const fields = { i, s: 'é"\\\\' + 'y'.repeat(i % 50), n: i % 7 === 0 ? null : i / 8 }
      if (i % 5 === 0) writeInfoBodySoon(i % 3 === 0 ? child : log, fields, body, 'soon')
      else writeInfoLineSoon(i % 3 === 0 ? child : log, fields, 'soon')
      // Now and then a line written at once, and the same fields through pino itself.
      if (i % 500 === 250) { log.warn({ i }, 'direct'); (i % 3 === 0 ? child : log).info(fields, 'pino') }
    }
    // Formatted 150 ms after the call (nothing runs meanwhile; the direct line makes it
    // formatted): the line carries the time of the call.
    await new Promise((resolve) => setImmediate(resolve))
    const t0 = Date.now()
    writeInfoLineSoon(log, { t0 }, 'timed')
    const until = t0 + 150
    while (Date.now() < until) { /* busy: no timer can format it earlier */ }
    log.warn('after the wait')
    writeInfoLineSoon(log, { last: true }, 'at exit')
    process.exit(0)
  `)
  t.equal(r.code, 0, r.err)
  const text = r.out.split('\n').filter((l) => l !== '')
  const lines = text.map((l) => JSON.parse(l) as Record<string, unknown>)
  const soon = lines.filter((l) => l.msg === 'soon')
  t.equal(soon.length, 3000, 'every deferred line, once')
  t.ok(soon.every((l, i) => l.i === i && l.s === 'é"\\' + 'y'.repeat(i % 50) && (i % 3 === 0) === (l.component === 'c')), 'in order, text and bindings intact')
  // Each direct line sits after the deferred lines given before it and before those given after.
  for (const l of lines.filter((x) => x.msg === 'direct')) {
    const at = lines.indexOf(l)
    t.equal(lines[at - 1]?.i, l.i, `direct line ${String(l.i)} after deferred line ${String(l.i)}`)
    t.equal(lines[at + 2]?.i, (l.i as number) + 1, 'and before the next deferred line')
  }
  // The deferred line and pino's own line for the same fields differ only in msg (and maybe time).
  const noTime = (l: string): string => l.replace(/"time":"[^"]*"/, '"time":""').replace('"msg":"soon"', '"msg":"pino"')
  const pinoLines = text.filter((l) => l.includes('"msg":"pino"'))
  t.equal(pinoLines.length, 6)
  for (const p of pinoLines) {
    const i = (JSON.parse(p) as { i: number }).i
    const mine = text.find((l) => l.includes('"msg":"soon"') && (JSON.parse(l) as { i: number }).i === i) as string
    t.equal(noTime(mine), noTime(p), `line ${i}: pino's bytes`)
  }
  const timed = lines.find((l) => l.msg === 'timed') as { time: string; t0: number }
  const late = Date.parse(timed.time) - timed.t0
  t.ok(late >= 0 && late < 100, `time of the call: ${late} ms after it (formatted >= 150 ms later)`)
  t.equal(lines.indexOf(timed as unknown as Record<string, unknown>) + 1, lines.findIndex((l) => l.msg === 'after the wait'))
  t.equal(lines.at(-1)?.msg, 'at exit', 'a deferred line given just before exit is written')
})

t.test('decision lines, deferred: the values at the time of the request, pino\'s bytes', async (t) => {
  const src = (f: string): string => JSON.stringify(pathToFileURL(join(process.cwd(), 'src', f)).href)
  const r = await run(`
    import { createLogger } from ${src('log.ts')}
    import { logDecision } from ${src('proxy/decision-log.ts')}
    import { Metrics } from ${src('metrics.ts')}
    const log = createLogger()
    const metrics = new Metrics()
    const frozen = Object.freeze({ decision: 'allow', rule: 'staff', reasons: Object.freeze([]) })
    const identity = { sub: 'u', email: 'before@example.com', groups: [], claims: {}, via: 'session' }
    const device = { id: 'd-1', trust: 'basic', trustRank: 1, reasons: [] }
    const decision = { decision: 'deny', rule: 'r-1', reasons: ['first "one"'] }
    const req = (n, d) => ({ raw: { method: 'GET' }, moatless: { id: 'req-' + n, site: 'app', internal: null, app: Object.freeze({ name: 'wiki' }), path: '/p/' + n, identity, device, decision: d, logged: false, startedAt: performance.now() } })
    logDecision(req(1, decision), 403, log, metrics)
    // Changed before the line is formatted (in the batch, up to 200 ms later).
    identity.email = 'after@example.com'
    device.trust = 'managed'
    decision.rule = 'r-2'
    decision.reasons.push('second')
    logDecision(req(2, decision), 403, log, metrics)
    for (let n = 3; n < 6; n++) logDecision(req(n, frozen), 200, log, metrics)
    log.info({ request_id: 'req-5', app: 'wiki', method: 'GET', path: '/p/5', user: 'after@example.com', device_id: 'd-1', device_trust: 'managed', decision: 'allow', rule: 'staff', reason: null, status: 200, duration: 0 }, 'decision')
    process.exit(0)
  `)
  t.equal(r.code, 0, r.err)
  const text = r.out.split('\n').filter((l) => l !== '')
  const lines = text.map((l) => JSON.parse(l) as Record<string, unknown>)
  t.equal(lines.length, 6)
  t.match(lines[0], { request_id: 'req-1', user: 'before@example.com', device_trust: 'basic', rule: 'r-1', reason: 'first "one"' }, 'as when the request was logged')
  t.match(lines[1], { request_id: 'req-2', user: 'after@example.com', device_trust: 'managed', rule: 'r-2', reason: 'first "one"; second' })
  t.same(lines.slice(2, 5).map((l) => l.request_id), ['req-3', 'req-4', 'req-5'], 'in order')
  const plain = (l: string | undefined): string => (l ?? '').replace(/"time":"[^"]*"/, '"time":""').replace(/"duration":[^,}]*/, '"duration":0')
  t.equal(plain(text[4]), plain(text[5]), 'a deferred decision line is pino\'s line')
})

t.test('a quiet process\'s deferred line is written within the 200 ms interval', async (t) => {
  const r = await run(`
    import { createLogger, writeInfoLineSoon } from ${JSON.stringify(LOG)}
    const log = createLogger()
    writeInfoLineSoon(log, { n: 1 }, 'one deferred line')
    setTimeout(() => process.exit(0), 2000)
  `)
  t.equal(r.code, 0, r.err)
  t.match(r.out, /"msg":"one deferred line"/)
  // The line carries the time of the call: output came long before the exit 2 s after it.
  const after = (r.firstChunkAt ?? Infinity) - lineTime(r.out, 'one deferred line')
  t.ok(after < 1000, `first output ${after} ms after the line was given`)
})
