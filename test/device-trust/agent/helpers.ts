import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CommandResult, Runner } from '../../../src/device-trust/agent/exec.js'

const root = join(process.cwd(), 'test/fixtures/agent')

export function fixture (os: 'linux' | 'macos' | 'windows', name: string): string {
  return readFileSync(join(root, os, name), 'utf8')
}

export const ok = (stdout: string): CommandResult => ({ status: 'ok', code: 0, stdout, stderr: '' })
export const failed = (stderr: string, code = 1, stdout = ''): CommandResult => ({ status: 'failed', code, stdout, stderr })
export const missing: CommandResult = { status: 'missing', code: null, stdout: '', stderr: '' }

/**
 * A fake machine: `command arg arg...` → result; anything not listed is "not installed".
 * Records what was run.
 */
export function fakeRunner (answers: Record<string, CommandResult>): Runner & { calls: string[] } {
  const calls: string[] = []
  const run = (async (command: string, args: string[]) => {
    const line = [command, ...args].join(' ')
    calls.push(line)
    return answers[line] ?? missing
  }) as Runner & { calls: string[] }
  run.calls = calls
  return run
}

const bin = join(process.cwd(), 'bin/moatless.js')
// Without tap's NODE_OPTIONS (process-info hooks): they double the start-up time of every run.
const { NODE_OPTIONS: _hooks, ...parentEnv } = process.env

export interface Run { code: number | null; out: string; err: string }

/** The built CLI (`npm run build` first), as a user runs it. */
export function moatless (args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: { ...parentEnv, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, out, err }))
  })
}
