/** Runs the real `moatless` CLI (bin/moatless.js → dist/) as a child process, for CLI tests. */
import { spawn } from 'node:child_process'
import { join } from 'node:path'

export const BIN = join(process.cwd(), 'bin/moatless.js')

/**
 * The environment the CLI runs in: the secrets the test configs reference, and without tap's
 * NODE_OPTIONS (process-info hooks), which double the start-up time of every run.
 */
export function cliEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _hooks, ...parent } = process.env
  return { ...parent, MOATLESS_CLIENT_SECRET: 'x'.repeat(20), MOATLESS_SESSION_SECRET: 's'.repeat(40), ...extra }
}

export interface CliRun { code: number | null; out: string; err: string; ms: number }

export function runCli (args: string[], env: NodeJS.ProcessEnv = cliEnv()): Promise<CliRun> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, out, err, ms: Date.now() - started }))
  })
}
