/**
 * Running the commands posture is read from. Never throws: a missing command, a non-zero exit,
 * a timeout or a permission error all come back as a result the collector turns into
 * "could not tell". No shell is involved (arguments are passed as is), output is read in the C
 * locale so that the parsers see the English texts they were written against.
 */
import { execFile } from 'node:child_process'
import { delimiter } from 'node:path'

export interface CommandResult {
  /** 'ok' = exit code 0; 'missing' = not installed (ENOENT); 'failed' = non-zero exit or other error. */
  status: 'ok' | 'missing' | 'failed' | 'timeout'
  code: number | null
  stdout: string
  stderr: string
}

export type Runner = (command: string, args: string[], options?: { timeoutMs?: number }) => Promise<CommandResult>

export const DEFAULT_TIMEOUT_MS = 3000

/** sbin directories are often missing from a user's PATH, but nft, ufw and zfs live there. */
function commandPath (): string {
  const path = (process.env.PATH ?? '').split(delimiter).filter((p) => p !== '')
  if (process.platform !== 'win32') {
    for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
      if (!path.includes(extra)) path.push(extra)
    }
  }
  return path.join(delimiter)
}

export const runCommand: Runner = (command, args, options = {}) => {
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  return new Promise((resolve) => {
    const env = process.platform === 'win32'
      ? process.env
      : { ...process.env, PATH: commandPath(), LC_ALL: 'C', LANG: 'C' }
    try {
      execFile(command, args, {
        timeout,
        killSignal: 'SIGKILL',
        maxBuffer: 1024 * 1024,
        windowsHide: true,
        encoding: 'utf8',
        env
      }, (err, stdout, stderr) => {
        const out = String(stdout ?? '')
        const errText = String(stderr ?? '')
        if (err === null) {
          resolve({ status: 'ok', code: 0, stdout: out, stderr: errText })
          return
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number }
        if (e.code === 'ENOENT') {
          resolve({ status: 'missing', code: null, stdout: out, stderr: errText })
        } else if (e.killed === true) {
          resolve({ status: 'timeout', code: null, stdout: out, stderr: errText })
        } else {
          resolve({ status: 'failed', code: typeof e.code === 'number' ? e.code : null, stdout: out, stderr: errText || e.message })
        }
      })
    } catch (err) {
      // e.g. EACCES / invalid arguments thrown synchronously by spawn
      resolve({ status: 'failed', code: null, stdout: '', stderr: (err as Error).message })
    }
  })
}

/** One line saying why a command gave no answer, for `extra.evidence`. */
export function whyNot (command: string, r: CommandResult): string {
  switch (r.status) {
    case 'missing': return `${command}: not installed`
    case 'timeout': return `${command}: timed out`
    case 'ok': return `${command}: output not understood`
    case 'failed': {
      const msg = firstLine(r.stderr) || firstLine(r.stdout)
      return `${command}: failed${r.code !== null ? ` (exit ${r.code})` : ''}${msg !== '' ? `: ${msg}` : ''}`
    }
  }
}

export function firstLine (text: string): string {
  return (text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '') ?? '').slice(0, 200)
}
