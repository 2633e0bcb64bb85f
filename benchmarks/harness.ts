/**
 * Plumbing shared by the bench phases (run.ts, signin.ts, rss.ts): CPU pinning, child
 * processes (upstream, bare proxies, Moatless instances), one autocannon run in its own pinned
 * process, Redis command counters and the proxy's own memory figures.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import * as client from 'openid-client'
import { request } from 'undici'
import { Browser } from '../test/helpers/browser.js'
import { signInAtIdp } from '../test/helpers/idp-login.js'

export const CLIENT_SECRET = 'bench-client-secret-0123456789abcdef'
export const SESSION_SECRET = 'bench-session-secret-0123456789abcdef-0123456789'

/** CPU 0: every proxy. CPU 1: the upstream and the load generator. */
export const PROXY_CPU = 0
export const LOAD_CPU = 1

export const hasTaskset = (() => { try { execFileSync('taskset', ['-c', '0', 'true']); return cpus().length >= 2 } catch { return false } })()
export const pin = (cpu: number, cmd: string[]): string[] => hasTaskset ? ['taskset', '-c', String(cpu), ...cmd] : cmd

const children: ChildProcess[] = []
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

export function stopAll (): void { for (const c of children) c.kill('SIGTERM') }

/** Starts a .mjs helper that reports its port over IPC. */
export function startScript (cpu: number, script: string, env: Record<string, string>): Promise<{ port: number; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = pin(cpu, [process.execPath, script])
    const child = spawn(cmd as string, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(child)
    child.once('message', (m: { port: number }) => resolve({ port: m.port, child }))
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)))
  })
}

export interface MoatlessProcess {
  child: ChildProcess
  pid: number
  port: number
  adminPort: number
  /** Parsed JSON log lines (only when started with logs: 'info'). */
  logs: Record<string, unknown>[]
}

/**
 * A real `moatless serve` (the built dist/, as deployed), pinned to the proxy CPU. `logs: 'info'`
 * keeps every log line (decision lines included) in `logs`; otherwise the log level is `level`
 * (default warn) and the lines go to /dev/null.
 */
export async function startMoatless (config: string, opts: { port: number; adminPort: number; logs?: 'info' | 'warn'; level?: string; nodeArgs?: string[]; env?: Record<string, string> }): Promise<MoatlessProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'moatless-bench-'))
  const file = join(dir, 'moatless.yaml')
  writeFileSync(file, config)
  const info = opts.logs === 'info'
  const [cmd, ...args] = pin(PROXY_CPU, [process.execPath, ...(opts.nodeArgs ?? []), 'bin/moatless.js', 'serve', '--config', file])
  const child = spawn(cmd as string, args, {
    env: { ...process.env, ...opts.env, MOATLESS_CLIENT_SECRET: CLIENT_SECRET, MOATLESS_SESSION_SECRET: SESSION_SECRET, MOATLESS_LOG_LEVEL: info ? 'info' : opts.level ?? 'warn' },
    stdio: ['ignore', info ? 'pipe' : 'ignore', 'inherit']
  })
  children.push(child)
  const logs: Record<string, unknown>[] = []
  if (info && child.stdout !== null) {
    createInterface({ input: child.stdout }).on('line', (line) => { try { logs.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not JSON */ } })
  }
  let exited = false
  child.once('exit', () => { exited = true })
  for (let i = 0; i < 150; i++) {
    if (exited) throw new Error(`moatless exited at start (config ${file})`)
    if (await listening(opts.port)) return { child, pid: child.pid as number, port: opts.port, adminPort: opts.adminPort, logs }
    await sleep(100)
  }
  throw new Error('moatless did not start')
}

function listening (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export interface LoadOptions {
  url: string
  headers: Record<string, string>
  connections: number
  duration?: number
  amount?: number
  /**
   * Requests per second across all connections, sent at even intervals whatever the answers
   * (open loop, see load.mjs); absent: each connection sends as soon as it is answered.
   */
  rate?: number
  servername?: string
  tls?: { ca?: string; cert?: string; key?: string }
  cookieFile?: string
}
export interface LoadRun { rps: number; total: number; sent: number; ok: number; duration_s: number; p50: number; p99: number; non2xx: number; status: Record<string, number>; errors: number; timeouts: number }

/** Requests of these runs that were not answered 2xx: other statuses, errors and timeouts. */
export const notOk = (...runs: LoadRun[]): number => runs.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0)

/** One autocannon run in its own process on the load CPU (blocks this process meanwhile). */
export function load (opts: LoadOptions): LoadRun {
  const [cmd, ...args] = pin(LOAD_CPU, [process.execPath, 'benchmarks/load.mjs', JSON.stringify({ pipelining: 1, ...opts })])
  return JSON.parse(execFileSync(cmd as string, args, { encoding: 'utf8', maxBuffer: 1 << 20 })) as LoadRun
}

const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 } })()

/** CPU time (user + system) a process has used so far, in ms (from /proc; null where there is none). */
export function cpuMs (pid: number | undefined): number | null {
  if (pid === undefined) return null
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLK_TCK
  } catch {
    return null
  }
}

/** The same run without blocking this process, so two can run at once (side by side). */
export function loadAsync (opts: LoadOptions): Promise<LoadRun> {
  return loadProcess<LoadRun>(opts)
}

/**
 * A fixed-rate run against two targets from one load process: each request goes to both at
 * the same instant (load.mjs `pair`), so the load generator's own pauses hit both alike.
 */
export async function loadPairAsync (opts: LoadOptions & { rate: number }, pair: { url: string; headers?: Record<string, string> }): Promise<[LoadRun, LoadRun, PairedDifference]> {
  const { pair: second, paired, ...first } = await loadProcess<LoadRun & { pair: LoadRun; paired: PairedDifference }>({ ...opts, pair })
  return [first, second, paired]
}

/** The first target's latency minus the second's, request by request (load.mjs `paired`). */
export interface PairedDifference { requests: number; p50: number; p90: number }

function loadProcess<T> (opts: LoadOptions & { pair?: { url: string; headers?: Record<string, string> } }): Promise<T> {
  const [cmd, ...args] = pin(LOAD_CPU, [process.execPath, 'benchmarks/load.mjs', JSON.stringify({ pipelining: 1, ...opts })])
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) { reject(new Error(`load.mjs exited ${code}`)); return }
      try { resolve(JSON.parse(out) as T) } catch (err) { reject(err) }
    })
  })
}

/** Redis's own per-command call counters (INFO commandstats), without INFO itself. */
export async function commandStats (redis: Redis): Promise<Map<string, number>> {
  const text = await redis.info('commandstats')
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (m !== null && m[1] !== 'info') out.set(m[1] as string, Number(m[2]))
  }
  return out
}

export function statsDelta (before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>()
  for (const [k, v] of after) { const d = v - (before.get(k) ?? 0); if (d > 0) out.set(k, d) }
  return out
}

export const sumOf = (m: Map<string, number>): number => { let n = 0; for (const v of m.values()) n += v; return n }

/** The proxy's own process figures from its admin /metrics (prom-client default metrics). */
export async function processMemory (adminPort: number): Promise<{ rss_mib: number; heap_used_mib: number; heap_total_mib: number }> {
  const res = await request(`http://127.0.0.1:${adminPort}/metrics`)
  const text = await res.body.text()
  const metric = (name: string): number => {
    const m = new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(text)
    if (m === null) throw new Error(`no ${name} in /metrics`)
    return Number(m[1])
  }
  const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10
  return {
    rss_mib: mib(metric('moatless_process_process_resident_memory_bytes')),
    heap_used_mib: mib(metric('moatless_process_nodejs_heap_size_used_bytes')),
    heap_total_mib: mib(metric('moatless_process_nodejs_heap_size_total_bytes'))
  }
}

export const median = (xs: number[]): number => percentile(xs, 50)
export function percentile (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
}
export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

/** Whether dist/ (what `moatless serve` runs) is older than some file under src/. */
export function distIsStale (): string | null {
  const newest = (dir: string, ext: string): { file: string; mtime: number } => {
    let best = { file: '', mtime: 0 }
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      if (e.isDirectory()) { const b = newest(p, ext); if (b.mtime > best.mtime) best = b } else if (e.name.endsWith(ext)) {
        const m = statSync(p).mtimeMs
        if (m > best.mtime) best = { file: p, mtime: m }
      }
    }
    return best
  }
  try {
    const src = newest('src', '.ts')
    const dist = newest('dist', '.js')
    return src.mtime > dist.mtime ? src.file : null
  } catch {
    return 'dist/ (missing)'
  }
}

/**
 * Every command Redis executes, from MONITOR, cut into slices by marker commands (ECHO) sent
 * on `rc`: `cut()` returns the commands seen since the previous cut. INFO and the markers
 * themselves are left out.
 */
export class RedisWatch {
  private current: string[][] = []
  private waiting: { marker: string; resolve: () => void } | null = null
  private n = 0
  private constructor (private readonly rc: Redis, private readonly monitor: Redis) {}

  static async start (url: string, rc: Redis): Promise<RedisWatch> {
    const monitor = await new Redis(url).monitor()
    const w = new RedisWatch(rc, monitor)
    monitor.on('monitor', (_time: string, args: string[]) => {
      const cmd = (args[0] ?? '').toLowerCase()
      if (cmd === 'echo' && w.waiting !== null && args[1] === w.waiting.marker) { w.waiting.resolve(); return }
      if (cmd === 'echo' && (args[1] ?? '').startsWith('bench-marker-')) return
      if (cmd === 'info') return
      w.current.push(args)
    })
    return w
  }

  async cut (): Promise<string[][]> {
    const marker = `bench-marker-${this.n++}`
    const seen = new Promise<void>((resolve) => { this.waiting = { marker, resolve } })
    await this.rc.echo(marker)
    await seen
    this.waiting = null
    const out = this.current
    this.current = []
    return out
  }

  close (): void { this.monitor.disconnect() }
}

/** What a command is for, from its name and key: timers versus the request path. */
export function commandPurpose (args: string[]): { purpose: string; timer: boolean } {
  const cmd = (args[0] ?? '').toLowerCase()
  const key = args[1] ?? ''
  if (cmd === 'xadd') return { purpose: 'xadd decision samples', timer: true }
  if (/:rules:/.test(key)) return { purpose: `${cmd} rule set`, timer: true }
  if (/:session:/.test(key)) return { purpose: `${cmd} session`, timer: false }
  if (/:device/.test(key)) return { purpose: `${cmd} device`, timer: false }
  if (/:once:/.test(key)) return { purpose: `${cmd} once`, timer: false }
  return { purpose: `${cmd}${key === '' ? '' : ' other'}`, timer: false }
}

/** A real ID token from the IdP (authorization code flow as an ordinary RP), for bearer targets (run.ts, profile.ts). */
export async function idTokenFor (issuer: string, user: string, password: string, clientSecret = CLIENT_SECRET): Promise<string> {
  const oidc = await client.discovery(new URL(issuer), 'moatless', clientSecret, undefined, { execute: [client.allowInsecureRequests] })
  const verifier = client.randomPKCECodeVerifier()
  const nonce = client.randomNonce()
  const state = client.randomState()
  const browser = new Browser()
  const authorize = client.buildAuthorizationUrl(oidc, { redirect_uri: 'http://rp.localhost/cb', scope: 'openid email profile', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce })
  const landing = await browser.follow(authorize.href, { headers: { accept: 'text/html' } }, 20, { stopBefore: (u) => u.origin !== new URL(issuer).origin })
  const back = await signInAtIdp(browser, landing.final.url, user, password)
  const tokens = await client.authorizationCodeGrant(oidc, new URL(back.url), { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state })
  await browser.close()
  return tokens.id_token as string
}
