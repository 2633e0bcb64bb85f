/** Runs the real `moatless` CLI (bin/moatless.js → dist/) as a child process, for CLI tests. */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { RedisStore } from '../../src/store/index.js'
import { startRedis, type RedisServer } from './redis.js'

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

/** The config lines every CLI test starts with: sign-in origin, IdP and session; secrets from cliEnv(). */
export const CONFIG_HEAD = `authenticate:
  url: http://auth.localhost:8080
idp:
  issuer: http://localhost:9000
  client_id: moatless
  client_secret: \${MOATLESS_CLIENT_SECRET}
session:
  secret: \${MOATLESS_SESSION_SECRET}
`

/**
 * What the store-backed CLI tests share: a private temp dir, a private redis-server, and a
 * list for the RedisStores a test opens to look at what the CLI wrote; all gone at teardown.
 */
export async function cliStoreFixture (t: Test, name: string): Promise<{ dir: string; redis: RedisServer; stores: RedisStore[] }> {
  const dir = mkdtempSync(join(tmpdir(), `moatless-${name}-`))
  const redis = await startRedis()
  const stores: RedisStore[] = []
  t.teardown(async () => {
    for (const s of stores) await s.close()
    await redis.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { dir, redis, stores }
}

/** Polls `what` every 20 ms; false if it is still not true after `ms`. */
export async function until (what: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms
  while (!what()) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return true
}
