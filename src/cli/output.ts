/**
 * How CLI commands talk: results on stdout (text, one record per line with its id first, or
 * one JSON document with --json), problems on stderr, exit code 0 or 1. A command fails by
 * throwing a CliError; `action()` prints it and sets the exit code, so every command ends the
 * same way and still gets to close what it opened (the store) in its `finally`.
 */

/** A failure the user can act on: its message is printed as is, without a stack. */
export class CliError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
  }
}

/** Wraps a commander action: a thrown error becomes its message on stderr and exit code 1. */
export function action<A extends unknown[]> (fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args)
    } catch (err) {
      const message = err instanceof CliError
        ? err.message
        : `moatless: ${(err as Error).message ?? String(err)}`
      process.stderr.write(message.endsWith('\n') ? message : message + '\n')
      process.exitCode = 1
    }
    exitWhenFlushed()
  }
}

/**
 * The command is done. ioredis leaves a 2 s timer behind when a client that never connected
 * is disconnected (AbstractConnector#disconnect waits for a `close` that already happened),
 * which would make "Redis is unreachable" take 5 s instead of 3. Once stdout and stderr are
 * flushed, nothing left can matter; the timer is unref'd, so a clean exit is not delayed.
 */
function exitWhenFlushed (): void {
  const check = (): void => {
    if (process.stdout.writableLength > 0 || process.stderr.writableLength > 0) {
      setTimeout(check, 50).unref()
      return
    }
    process.exit()
  }
  setTimeout(check, 100).unref()
}

export function printLine (line = ''): void {
  process.stdout.write(line + '\n')
}

export function printJson (doc: unknown): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n')
}

/** ms since epoch → ISO 8601 (UTC); '-' for a missing or invalid time. */
export function iso (ms: number | undefined | null): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-'
  return new Date(ms).toISOString()
}

/** `1 session`, `2 sessions`, `0 sessions`. */
export function count (n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

/** A value that must stay on one line of text output (names, sources, reasons). */
export function oneLine (s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ')
}
