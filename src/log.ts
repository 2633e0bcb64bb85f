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
 * Standard output, written off the request path: lines are collected and handed to sonic-boom
 * (which writes asynchronously) 4 KiB at a time, joined into one string, and at least every
 * 200 ms, so a quiet proxy's lines still appear at once. `logger.flush()` (at shutdown) and
 * process exit write whatever is collected.
 *
 * A decision line is written for every request, so what a line costs on its way out matters:
 * handed to sonic-boom one by one, each string-mode write measured the byte length of all it
 * had collected (a string it first flattens), and each buffer-mode write needed a Buffer of its
 * own; here a line costs an array slot until its batch is joined.
 */
function stdout (): DestinationStream {
  const sonic = pino.destination({ dest: 1, sync: false })
  let lines: string[] = []
  let size = 0
  const drain = (): void => {
    if (lines.length === 0) return
    const chunk = lines.length === 1 ? lines[0] as string : lines.join('')
    lines = []
    size = 0
    sonic.write(chunk)
  }
  setInterval(drain, 200).unref()
  // sonic-boom writes what it holds at exit; the lines collected here must reach it first.
  process.once('exit', () => { drain(); try { sonic.flushSync() } catch { /* stdout closed */ } })
  return {
    write (line: string): void {
      lines.push(line)
      size += line.length
      if (size >= 4096) drain()
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

/**
 * Writes one info line: the same bytes as `log.info(fields, msg)`, cheaper. The fields are
 * serialized by one JSON.stringify (V8's fast path for a plain object) instead of pino's walk
 * over the object, key by key; the framing is pino's own, read from the logger: level, time,
 * the logger's bindings (pid, hostname, a child's), the message, the line end, its destination.
 * test/log.test.ts compares the two byte for byte. Only for flat fields (strings, finite
 * numbers, null; undefined is left out, as pino does) that need no redaction and no serializer.
 * The caller checks the level first. A decision line is written for every request.
 */
export function writeInfoLine (log: Logger, fields: Record<string, string | number | null | undefined>, msg: string): void {
  const l = log as unknown as PinoInternals
  const json = JSON.stringify(fields)
  const line = (l[pino.symbols.lsCacheSym] as Record<number, string>)[30] as string +
    (l[pino.symbols.timeSym] as () => string)() +
    (l[pino.symbols.chindingsSym] as string) +
    (json.length > 2 ? ',' + json.slice(1, -1) : '') + ',"msg":' + JSON.stringify(msg) + (l[pino.symbols.endSym] as string)
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
