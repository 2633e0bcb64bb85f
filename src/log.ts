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
 * soon as it is written, and its bytes cost one copy. A line given with `writeInfoLineSoon` or
 * `writeInfoBodySoon` (the decision line) is kept as given (its fields, or the record its body
 * is formatted from) and formatted with the others waiting, DEFER_LINES at a time, before
 * anything written after it: the output is in the order the lines were given.
 */
const BATCH_BYTES = 64 * 1024

/**
 * Info lines whose formatting can wait (`writeInfoLineSoon`, `writeInfoBodySoon`) are kept as they were given and
 * formatted this many at a time, in one loop: inside a loaded proxy a decision line cost
 * ~7 µs formatted on its request (its code and data cold) and ~2.5 µs formatted in a batch
 * (benchmarks/NOTES-hot-path.md, fourth round).
 */
const DEFER_LINES = 256

/** A destination that formats deferred lines itself (stdout()), before anything it writes after them. */
const DEFER = Symbol('moatless.deferLine')
interface Deferred {
  log: Logger
  /** What `body` formats: a writeInfoLineSoon's fields, a writeInfoBodySoon's record. */
  record: unknown
  body: (record: never) => string
  msg: string
  at: number
}
type Deferring = DestinationStream & { [DEFER]: (line: Deferred) => void }

function stdout (): DestinationStream {
  const sonic = pino.destination({ dest: 1, sync: false, contentMode: 'buffer' })
  let batch = Buffer.allocUnsafe(BATCH_BYTES)
  let used = 0
  let deferred: Deferred[] = []
  let formatScheduled = false
  const put = (line: string): void => {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: a line that fits that bound fits whole.
    if (used + line.length * 3 > BATCH_BYTES) {
      handOver()
      if (line.length * 3 > BATCH_BYTES) { sonic.write(Buffer.from(line, 'utf8') as unknown as string); return }
    }
    used += batch.write(line, used, 'utf8')
  }
  /** Formats the deferred lines, in the order they came, into the batch. */
  const formatDeferred = (): void => {
    formatScheduled = false
    if (deferred.length === 0) return
    const lines = deferred
    deferred = []
    for (let i = 0; i < lines.length; i++) {
      const d = lines[i] as Deferred
      put(bodyLine(d.log, (d.body as (r: unknown) => string)(d.record), d.msg, isoTimeAt(d.at)))
    }
  }
  const handOver = (): void => {
    if (used === 0) return
    const full = batch.subarray(0, used)
    // sonic-boom keeps the buffer until it is written: the next lines go to a new one.
    batch = Buffer.allocUnsafe(BATCH_BYTES)
    used = 0
    sonic.write(full as unknown as string)
  }
  const drain = (): void => {
    formatDeferred()
    handOver()
  }
  setInterval(drain, 200).unref()
  // sonic-boom writes what it holds at exit; the lines collected here must reach it first.
  process.once('exit', () => { drain(); try { sonic.flushSync() } catch { /* stdout closed */ } })
  const dest: Deferring = {
    write (line: string): void {
      // Lines are written in the order they were given: deferred ones first.
      if (deferred.length > 0) formatDeferred()
      put(line)
    },
    [DEFER] (line: Deferred): void {
      deferred.push(line)
      if (deferred.length >= DEFER_LINES && !formatScheduled) {
        // After this request's I/O, not inside it.
        formatScheduled = true
        setImmediate(formatDeferred)
      }
    },
    flush (cb?: (err?: Error) => void): void { drain(); sonic.flush(cb) },
    flushSync (): void { drain(); sonic.flushSync() }
  } as Deferring
  return dest
}

let second = -1
let secondPrefix = ''

/**
 * pino's `stdTimeFunctions.isoTime` (`,"time":"2026-11-27T16:05:48.169Z"`), with the part up to
 * the second formatted once a second rather than on every line: toISOString costs about a
 * microsecond, and a decision line is written for every request.
 */
export function isoTime (): string {
  return isoTimeAt(Date.now())
}

/** isoTime for a moment already read (ms since the epoch). */
export function isoTimeAt (now: number): string {
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
export function jsonValue (v: string | number | null): string {
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
 * The caller checks the level first. (Written for every request, the decision line measured
 * 3.5 µs a line as one JSON.stringify of the whole object, inside a loaded proxy. It now comes
 * through writeInfoBodySoon.)
 */
export function writeInfoLine (log: Logger, fields: LineFields, msg: string): void {
  const l = log as unknown as PinoInternals
  ;(l[pino.symbols.streamSym] as { write (s: string): void }).write(bodyLine(log, fieldMembers(fields), msg, (l[pino.symbols.timeSym] as () => string)()))
}

/** The flat fields writeInfoLine takes. */
export type LineFields = Record<string, string | number | null | undefined>

/**
 * writeInfoLine, formatted later: the fields are kept as given (the caller must not change
 * them) and the line is formatted with the time of this call, in order with every other line,
 * at the latest when the destination next writes anything, within 200 ms, or at exit. Only the
 * default destination (stdout()) defers; with any other, or another time format, the line is
 * written now. Inside a loaded proxy, formatting a decision line on its request cost ~4.5 µs
 * more than formatting it in a batch.
 */
export function writeInfoLineSoon (log: Logger, fields: LineFields, msg: string): void {
  writeInfoBodySoon(log, fields, fieldMembers, msg)
}

/**
 * writeInfoLineSoon for a line whose fields the caller formats itself: `body(record)` returns
 * them as JSON members, each led by a comma (`,"a":1,"b":"x"`), and is called when the line is
 * formatted, in order with the other lines, as writeInfoLineSoon's are. The caller keeps only
 * what it needs in `record` (and must not change it), and can keep ready-made members for
 * values that repeat (the decision line's app, user, device and rule: decision-log.ts). As with
 * writeInfoLineSoon, only the default destination with the default time format defers; with
 * any other the line is written at once.
 */
export function writeInfoBodySoon<R> (log: Logger, record: R, body: (record: R) => string, msg: string): void {
  const l = log as unknown as PinoInternals
  const stream = l[pino.symbols.streamSym] as Partial<Deferring>
  const defer = stream[DEFER]
  if (defer === undefined || l[pino.symbols.timeSym] !== isoTime) {
    ;(l[pino.symbols.streamSym] as { write (s: string): void }).write(bodyLine(log, body(record), msg, (l[pino.symbols.timeSym] as () => string)()))
    return
  }
  defer.call(stream, { log, record, body, msg, at: Date.now() })
}

/** One info line of `log` with `time` (pino's `,"time":...` fragment) and its fields already formatted (`body`). */
function bodyLine (log: Logger, body: string, msg: string, time: string): string {
  const l = log as unknown as PinoInternals
  return (l[pino.symbols.lsCacheSym] as Record<number, string>)[30] as string + time + (l[pino.symbols.chindingsSym] as string) + body + ',"msg":' + jsonValue(msg) + (l[pino.symbols.endSym] as string)
}

/** `fields` as JSON members, each led by a comma, as pino writes them (undefined left out). */
function fieldMembers (fields: LineFields): string {
  let members = ''
  for (const k in fields) {
    const v = fields[k]
    if (v !== undefined) members += ',"' + k + '":' + jsonValue(v)
  }
  return members
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
