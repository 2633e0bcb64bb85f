import pino, { type DestinationStream, type Logger } from 'pino'

/**
 * pino, with redaction set up before the first line: cookies, authorization headers and any
 * token-like field are censored wherever they appear in a logged object.
 */
export const REDACT_PATHS = [
  // Request/response objects, should anything ever log one (fastify's serializers, errors).
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-moatless-device"]', 'req.headers["x-client-cert"]',
  'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
  // Token-like fields at the top level of a log object. (No `*.` wildcards: redaction runs on
  // every line, and the decision line is written for every request.)
  'authorization', 'cookie', 'token', 'tokens', 'id_token', 'access_token', 'refresh_token', 'logout_token',
  'client_secret', 'secret', 'code', 'state', 'nonce', 'code_verifier'
]

export function createLogger (opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino({
    level: opts.level ?? process.env.MOATLESS_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: isoTime
  }, opts.destination ?? stdout())
}

/**
 * Standard output, written off the request path: each line is copied, UTF-8, into a 64 KiB
 * buffer as it comes; the buffer is handed to sonic-boom (which writes asynchronously) when it
 * is full and at least every 200 ms, so a quiet proxy's lines still appear at once.
 * `logger.flush()` (at shutdown) and process exit write whatever is collected.
 *
 * A decision line is written for every request, so what a line costs on its way out matters.
 * Measured inside a loaded proxy (benchmarks/NOTES-hot-path.md): handed to sonic-boom one by
 * one, each string-mode write measured the byte length of all it held (a string it first
 * flattens); collected as strings and joined 4 KiB at a time, the lines stayed alive as string
 * ropes until the join, which then cost 2.5 µs a line. Copied at once, a line is garbage as
 * soon as it is written, and its bytes cost one copy.
 */
const BATCH_BYTES = 64 * 1024

function stdout (): DestinationStream {
  const sonic = pino.destination({ dest: 1, sync: false, contentMode: 'buffer' })
  let batch = Buffer.allocUnsafe(BATCH_BYTES)
  let used = 0
  const drain = (): void => {
    if (used === 0) return
    const full = batch.subarray(0, used)
    // sonic-boom keeps the buffer until it is written: the next lines go to a new one.
    batch = Buffer.allocUnsafe(BATCH_BYTES)
    used = 0
    sonic.write(full as unknown as string)
  }
  setInterval(drain, 200).unref()
  // sonic-boom writes what it holds at exit; the lines collected here must reach it first.
  process.once('exit', () => { drain(); try { sonic.flushSync() } catch { /* stdout closed */ } })
  return {
    write (line: string): void {
      // A UTF-16 code unit is at most 3 bytes of UTF-8: a line that fits that bound fits whole.
      if (used + line.length * 3 > BATCH_BYTES) {
        drain()
        if (line.length * 3 > BATCH_BYTES) { sonic.write(Buffer.from(line, 'utf8') as unknown as string); return }
      }
      used += batch.write(line, used, 'utf8')
    },
    flush (cb?: (err?: Error) => void): void { drain(); sonic.flush(cb) },
    flushSync (): void { drain(); sonic.flushSync() }
  } as DestinationStream
}

let second = -1
let secondPrefix = ''

/**
 * pino's `stdTimeFunctions.isoTime` (`,"time":"2026-11-27T16:05:48.169Z"`), with the part up to
 * the second formatted once a second rather than on every line: toISOString costs about a
 * microsecond, and a decision line is written for every request.
 */
export function isoTime (): string {
  const now = Date.now()
  const sec = Math.floor(now / 1000)
  if (sec !== second) {
    const iso = new Date(sec * 1000).toISOString()
    second = sec
    secondPrefix = ',"time":"' + iso.slice(0, iso.length - 4)
  }
  const ms = now - sec * 1000
  return secondPrefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z"'
}

type PinoInternals = Record<symbol, unknown>

/** Characters JSON.stringify escapes in a string (and lone surrogates, which it escapes too). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/** A field value as JSON.stringify writes it (the key is left out when the value is undefined). */
function jsonValue (v: string | number | null): string {
  if (typeof v === 'string') return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : '"' + v + '"'
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null'
  return 'null'
}

/**
 * Writes one info line: the same bytes as `log.info(fields, msg)`, cheaper. The fields are
 * written key by key with a fast path for strings that need no escaping (most of a decision
 * line), and JSON.stringify for those that do; the framing is pino's own, read from the
 * logger: level, time, the logger's bindings (pid, hostname, a child's), the message, the line
 * end, its destination. test/log.test.ts compares the two byte for byte, on fixed cases and on
 * random strings. Only for flat fields (strings, numbers, null; undefined is left out, as
 * pino does) whose keys are plain identifiers and that need no redaction and no serializer.
 * The caller checks the level first. A decision line is written for every request: inside a
 * loaded proxy, one JSON.stringify of the whole object measured 3.5 µs a line.
 */
export function writeInfoLine (log: Logger, fields: Record<string, string | number | null | undefined>, msg: string): void {
  const l = log as unknown as PinoInternals
  let line = (l[pino.symbols.lsCacheSym] as Record<number, string>)[30] as string +
    (l[pino.symbols.timeSym] as () => string)() +
    (l[pino.symbols.chindingsSym] as string)
  for (const k in fields) {
    const v = fields[k]
    if (v !== undefined) line += ',"' + k + '":' + jsonValue(v)
  }
  line += ',"msg":' + jsonValue(msg) + (l[pino.symbols.endSym] as string)
  ;(l[pino.symbols.streamSym] as { write (s: string): void }).write(line)
}

type Method = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * What fastify hands each request as `req.log`: a stand-in for a pino child bound to the
 * request id, made for real only when something logs through it. A pino child costs 1-2 µs
 * (bindings serialized, a new prototype) and fastify would make one for every request, though
 * a request that goes well logs nothing through it (its decision line is written with the
 * parent logger, request id included). Methods live on the prototype: one small object per
 * request.
 */
export class LazyRequestLogger {
  private made: Logger | null = null

  constructor (private readonly parent: Logger, private readonly bindings: pino.Bindings, private readonly opts: pino.ChildLoggerOptions) {}

  /** The pino child, made on first use. */
  get real (): Logger { return this.made ??= this.parent.child(this.bindings, this.opts) }

  get level (): string { return this.real.level }
  set level (level: string) { this.real.level = level }
  isLevelEnabled (level: string): boolean { return this.real.isLevelEnabled(level) }
  child (bindings: pino.Bindings, opts?: pino.ChildLoggerOptions): Logger { return this.real.child(bindings, opts) }
  fatal (...args: unknown[]): void { this.call('fatal', args) }
  error (...args: unknown[]): void { this.call('error', args) }
  warn (...args: unknown[]): void { this.call('warn', args) }
  info (...args: unknown[]): void { this.call('info', args) }
  debug (...args: unknown[]): void { this.call('debug', args) }
  trace (...args: unknown[]): void { this.call('trace', args) }
  silent (): void {}

  private call (method: Method, args: unknown[]): void {
    const l = this.real
    ;(l[method] as (...a: unknown[]) => void).apply(l, args)
  }
}
