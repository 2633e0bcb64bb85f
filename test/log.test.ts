/**
 * req.log is a LazyRequestLogger (src/log.ts): the pino child bound to the request id is made
 * only when a request logs through it. What a request logs that way must be what a real child
 * writes: the request id bound, the parent's level and redaction.
 */
import { Writable } from 'node:stream'
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { request } from 'undici'
import pino from 'pino'
import { createLogger, isoTime, LazyRequestLogger, writeInfoLine, writeInfoLineSoon } from '../src/log.js'

function capture (): { lines: () => Record<string, unknown>[]; text: () => string; stream: Writable } {
  let text = ''
  const stream = new Writable({ write (chunk, _enc, cb) { text += String(chunk); cb() } })
  return { stream, text: () => text, lines: () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('lines written through it carry the bindings, keep the level and the redaction', async (t) => {
  const out = capture()
  const parent = createLogger({ level: 'info', destination: out.stream })
  const log = new LazyRequestLogger(parent, { reqId: 'r-1' }, {})
  log.debug('below the level')
  log.info({ path: '/x', cookie: 'moatless_session=secret-value' }, 'hello %s', 'world')
  log.warn('careful')
  log.child({ step: 'inner' }).error('inner line')
  t.equal(log.level, 'info')
  t.equal(log.isLevelEnabled('debug'), false)
  await new Promise((resolve) => setImmediate(resolve))
  const lines = out.lines()
  t.same(lines.map((l) => [l.level, l.msg, l.reqId]), [[30, 'hello world', 'r-1'], [40, 'careful', 'r-1'], [50, 'inner line', 'r-1']])
  t.equal(lines[0]?.cookie, '[redacted]', 'the parent\'s redaction applies')
  t.equal(lines[0]?.path, '/x')
  t.equal(lines[2]?.step, 'inner', 'a child of it keeps its own bindings too')
})

t.test('as fastify\'s child logger factory: req.log lines carry the request id', async (t) => {
  const out = capture()
  const parent = createLogger({ level: 'info', destination: out.stream })
  const app = Fastify({
    loggerInstance: parent as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => 'req-42',
    childLoggerFactory: (p, bindings, opts) => new LazyRequestLogger(p as never, bindings, opts) as unknown as FastifyBaseLogger
  })
  app.get('/quiet', async () => 'ok')
  app.get('/loud', async (req) => { req.log.warn({ n: 1 }, 'something to say'); return 'ok' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  t.equal((await request(`${base}/quiet`)).statusCode, 200)
  t.equal((await request(`${base}/loud`)).statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  const lines = out.lines().filter((l) => l.msg === 'something to say')
  t.equal(lines.length, 1)
  t.equal(lines[0]?.reqId, 'req-42')
  t.equal(lines[0]?.n, 1)
})

t.test('isoTime: pino\'s isoTime, the second formatted once', async (t) => {
  let compared = 0
  for (let i = 0; i < 20_000 && compared < 2000; i++) {
    const before = Date.now()
    const ours = isoTime()
    const theirs = pino.stdTimeFunctions.isoTime()
    if (Date.now() !== before) continue // a millisecond passed in between: nothing to compare
    compared++
    if (ours !== theirs) { t.equal(ours, theirs); return }
  }
  t.ok(compared > 100, `compared ${compared} times within one millisecond`)
  t.match(isoTime(), /^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/)
})

t.test('writeInfoLine matches pino on random strings and numbers', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.stream })
  // Characters that need escaping, that do not, and a surrogate pair. (Lone surrogates: below.)
  const alphabet = ['a', 'Z', '0', ' ', '/', '"', '\\', '\u0000', '\u0008', '\n', '\u001f', '\u007f', 'é', '日', '\u2028', '\ud83d\ude00', '<', '%']
  let seed = 42
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const str = (): string => Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]).join('')
  const nums = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 123.456, Number.NaN, Infinity, -Infinity, 2 ** 53]
  const N = 2000
  for (let i = 0; i < N; i++) {
    const fields = { request_id: str(), app: rnd(4) === 0 ? null : str(), path: str(), user: rnd(3) === 0 ? undefined : str(), status: nums[rnd(nums.length)], duration: rnd(1000) / 7 }
    const msg = rnd(5) === 0 ? str() : 'decision'
    log.info(fields, msg)
    writeInfoLine(log, fields, msg)
  }
  await new Promise((resolve) => setImmediate(resolve))
  const lines = out.text().split('\n').filter((l) => l !== '')
  t.equal(lines.length, 2 * N)
  const noTime = (l: string): string => l.replace(/"time":"[^"]*"/, '"time":""')
  let differ = 0
  for (let i = 0; i < lines.length; i += 2) if (noTime(lines[i + 1] as string) !== noTime(lines[i] as string)) { if (differ++ === 0) t.equal(noTime(lines[i + 1] as string), noTime(lines[i] as string), `line ${i / 2}`) }
  t.equal(differ, 0, 'every line byte-identical to pino\'s')
})

t.test('writeInfoLine escapes a lone surrogate, as JSON.stringify does (pino may write it raw)', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.stream })
  writeInfoLine(log, { path: '/a\ud800b', user: '\udc00', emoji: '\ud83d\ude00' }, 'decision')
  await new Promise((resolve) => setImmediate(resolve))
  const line = out.text().trim()
  t.match(line, /"path":"\/a\\ud800b","user":"\\udc00","emoji":"\ud83d\ude00"/)
  t.same(JSON.parse(line).path, '/a\ud800b')
  t.ok(Buffer.from(line, 'utf8').toString('utf8') === line, 'the line survives UTF-8 unchanged')
})

t.test('writeInfoLine writes the line pino would, bindings included', async (t) => {
  const out = capture()
  const root = createLogger({ level: 'info', destination: out.stream })
  const cases: Record<string, string | number | null | undefined>[] = [
    { request_id: 'r-1', app: 'wiki', path: '/a b/"quoted"\\back', user: null, status: 200, duration: 1.25 },
    { request_id: 'r-2', app: null, path: '/\u0000\u001f\u007f/é/日本/\ud800', user: 'ann@example.com', status: 403, duration: Number.NaN },
    { request_id: 'r-3', app: 'x'.repeat(100), path: '\n\r\t', user: '\u2028\u2029', status: 0, duration: 0.001 },
    { request_id: 'r-4', app: undefined, path: '/', user: null, status: Infinity, duration: -0 },
    {}
  ]
  for (const log of [root, root.child({ replica: 'one' })]) {
    for (const c of cases) {
      log.info(c, 'decision')
      writeInfoLine(log, c, 'decision')
    }
  }
  await new Promise((resolve) => setImmediate(resolve))
  const lines = out.text().split('\n').filter((l) => l !== '')
  t.equal(lines.length, 20)
  const noTime = (l: string): string => l.replace(/"time":"[^"]*"/, '"time":""')
  for (let i = 0; i < lines.length; i += 2) t.equal(noTime(lines[i + 1] as string), noTime(lines[i] as string), `line ${i / 2}`)
  t.equal(JSON.parse(lines[lines.length - 1] as string).replica, 'one')
})

t.test('writeInfoLineSoon with any destination but the default one writes at once, as writeInfoLine', async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.stream })
  const fields = { request_id: 'r-1', app: 'wiki', path: '/a "b"', user: null, status: 200, duration: 0.5 }
  writeInfoLineSoon(log, fields, 'decision')
  writeInfoLine(log, fields, 'decision')
  await new Promise((resolve) => setImmediate(resolve))
  const [soon, now] = out.text().split('\n')
  const noTime = (l: string | undefined): string => (l ?? '').replace(/"time":"[^"]*"/, '"time":""')
  t.equal(noTime(soon), noTime(now))
  t.match(soon, /"path":"\/a \\"b\\""/)
})
