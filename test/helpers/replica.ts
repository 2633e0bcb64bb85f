/** Runs `moatless serve` as a real child process (a replica) and talks to it directly. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { request } from 'undici'

export interface Replica {
  port: number
  adminPort: number
  output (): string
  /** A request sent to this replica's port, with the Host of `url` (the public origin). */
  fetch (url: string, init?: { method?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Record<string, unknown>; body: string }>
  stop (): Promise<number | null>
  child: ChildProcess
}

export async function startReplica (configFile: string, env: Record<string, string>, port: number, adminPort: number): Promise<Replica> {
  const child = spawn(process.execPath, [join(process.cwd(), 'bin/moatless.js'), 'serve', '--config', configFile], {
    env: { ...process.env, ...env, MOATLESS_PORT: String(port), MOATLESS_ADMIN_PORT: String(adminPort) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  for (let i = 0; i < 300 && !out.includes('moatless listening'); i++) {
    if (child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (!out.includes('moatless listening')) {
    child.kill('SIGKILL')
    throw new Error(`replica on ${port} did not start:\n${out}`)
  }
  return {
    port,
    adminPort,
    child,
    output: () => out,
    async fetch (url, init = {}) {
      const u = new URL(url)
      const res = await request(`http://127.0.0.1:${port}${u.pathname}${u.search}`, {
        method: (init.method ?? 'GET') as 'GET',
        headers: { host: u.host, ...init.headers }
      })
      return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
    },
    async stop () {
      if (child.exitCode === null) child.kill('SIGTERM')
      return await exited
    }
  }
}
