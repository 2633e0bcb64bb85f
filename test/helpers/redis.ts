/**
 * A real redis-server per test, on a free port, nothing persisted.
 *
 * `stop()` kills it the hard way (SIGKILL, as a crash or a network cut looks to clients) and
 * `start()` brings it back on the same port, empty, so tests can watch the proxy live through a
 * store outage and recover by itself. Every server started here is killed when the test process
 * exits, also on SIGINT/SIGTERM (tap's timeout), so no redis-server outlives its test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { freePort } from './ports.js'

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  url: string
  port: number
  /** Kills the server (SIGKILL) and waits until the process has exited. */
  stop(): Promise<void>
  /** Starts it again on the same port (empty) and waits until it answers PING. */
  start(): Promise<void>
  /** Stops it for good. */
  close(): Promise<void>
}

const running = new Set<ChildProcess>()
let cleanupInstalled = false

function installCleanup(): void {
  if (cleanupInstalled) return
  cleanupInstalled = true
  const killAll = () => {
    for (const child of running) child.kill('SIGKILL')
    running.clear()
  }
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll()
      // Keep the default behaviour (exit by the signal) unless someone else handles it too.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.once(signal, onSignal)
  }
}

/**
 * `persist: true` keeps data across stop()/start() (append-only file, fsync on every write),
 * so an outage can be tested without losing sessions: like a Redis that went away and came back.
 */
export async function startRedis(opts: { persist?: boolean } = {}): Promise<RedisServer> {
  installCleanup()
  let child: ChildProcess | undefined
  let port = 0
  const dataDir = opts.persist === true ? mkdtempSync(join(tmpdir(), 'moatless-redis-')) : undefined

  // A port from freePort() can be taken by someone else before redis binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      child = await spawnRedis(port, dataDir)
      break
    } catch (err) {
      if (attempt >= 4) throw err
    }
  }

  const stop = async () => {
    const current = child
    child = undefined
    if (current === undefined) return
    await killAndWait(current)
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    async start() {
      if (child !== undefined) throw new Error(`redis-server on port ${port} is already running`)
      child = await spawnRedis(port, dataDir)
    },
    close: stop,
  }
}

async function spawnRedis(port: number, dataDir?: string): Promise<ChildProcess> {
  const persistence = dataDir === undefined
    ? ['--appendonly', 'no', '--dir', tmpdir()]
    : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir]
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  running.add(child)
  let output = ''
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()))

  const exited = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`could not run redis-server: ${err.message}`, { cause: err })))
    child.once('exit', (code, signal) => {
      running.delete(child)
      reject(new Error(`redis-server on port ${port} exited (${signal ?? code}) before answering PING:\n${output}`))
    })
  })
  exited.catch(() => {}) // only awaited while starting

  try {
    await Promise.race([waitForPong(port, 10_000), exited])
  } catch (err) {
    await killAndWait(child)
    throw err
  }
  return child
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    running.delete(child)
    return
  }
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGKILL')
  await gone
  running.delete(child)
}

async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await ping(port)) return
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** One PING over a raw socket (RESP inline command); true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let reply = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d: Buffer) => {
      reply += d.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}
