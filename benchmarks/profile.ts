/**
 * Profiles the hot path. This process hosts only the proxy under test; the origin
 * (upstream.mjs) and the load generator (load.mjs) run in their own processes, pinned to
 * CPU 1 while this one is pinned to CPU 0 (when taskset exists), so the profile and the CPU
 * time per request are the proxy's alone. Run with
 *   npx tsx benchmarks/profile.ts
 * Options (environment):
 *   PROFILE_TARGET       session (default): Moatless with a signed-in session cookie
 *                        bearer: Moatless with an IdP ID token
 *                        bare: fastify + @fastify/http-proxy, as benchmarks/bare-proxy.mjs
 *                        bare-headers: the same, sent the headers Moatless adds upstream
 *                        bare-same: the same, sent the request the session target is sent
 *                        (Host, a session cookie of the same length, Accept)
 *   PROFILE_STORE        memory (default) or redis (a redis-server from test/helpers)
 *   PROFILE_SECONDS      measured seconds (default 5), after 2 s of warm-up
 *   PROFILE_CONNECTIONS  default 32, as `npm run bench`
 *   PROFILE_LOG_LEVEL    Moatless's log level (default warn, as `npm run bench`; info writes
 *                        the decision line of every request, to a sink that drops it)
 *   PROFILE_DIST=1       profile the compiled dist/ (npm run build first): real line numbers;
 *                        or a directory: a copy of an earlier dist/, for A/B runs
 *   PROFILE_RATE         offered load in req/s (default: as fast as it answers); at one fixed
 *                        rate the CPU µs per request of two targets compare fairly
 *   PROFILE_REQUESTS     measure this many requests instead of PROFILE_SECONDS
 *   PROFILE_WARMUP       warm up with this many requests instead of for 2 s
 *   PROFILE_INTERVAL_US  sampling interval of the profile (default 250 µs; 0: no profile)
 *   PROFILE_SYNC         a path: after the warm-up, write PATH.<pid>.ready and start measuring
 *                        only once PATH.go exists (two profiles run side by side measure the
 *                        same seconds; see NOTES-hot-path.md)
 *   PROFILE_OUT          where the .cpuprofile goes (default $TMPDIR/moatless-profiles)
 *   PROFILE_HEAP=1       instead of a CPU profile, sample allocations (every 4 KiB allocated,
 *                        objects already collected included) and print the bytes allocated
 *                        per request by the function that allocated them
 *   PROFILE_HEAP=promoted  the same for what outlived a minor GC (promoted to the old
 *                        generation): what makes scavenges slow and major GCs come
 *   PROFILE_PRETENURING=1  leave V8's allocation-site pretenuring on for a Moatless target
 *                        (bin/moatless.js turns it off, and so does this script by default)
 *   PROFILE_CALLGRIND=1  under `valgrind --tool=callgrind --instr-atstart=no`: count the
 *                        instructions of the measured requests only (see NOTES-hot-path.md)
 * It prints req/s, latency and CPU µs per request, and writes a .cpuprofile of the measured
 * seconds only (no module loading, no warm-up): open it in Chrome DevTools or summarize it
 * with `npx tsx benchmarks/top.ts FILE`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { stringify } from 'yaml'
import { hasTaskset, loadAsync, pin, type LoadRun } from './harness.js'
import v8 from 'node:v8'

const TARGET = process.env.PROFILE_TARGET ?? 'session'
// Moatless runs as bin/moatless.js starts it: without allocation-site pretenuring (see there).
// PROFILE_PRETENURING=1 keeps V8's default, to compare.
if (!TARGET.startsWith('bare') && process.env.PROFILE_PRETENURING !== '1') v8.setFlagsFromString('--no-allocation-site-pretenuring')
const STORE = process.env.PROFILE_STORE ?? 'memory'
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 5)
const CONNECTIONS = Number(process.env.PROFILE_CONNECTIONS ?? 32)
const RATE = process.env.PROFILE_RATE === undefined ? undefined : Number(process.env.PROFILE_RATE)
const REQUESTS = process.env.PROFILE_REQUESTS === undefined ? undefined : Number(process.env.PROFILE_REQUESTS)
const WARMUP = process.env.PROFILE_WARMUP === undefined ? undefined : Number(process.env.PROFILE_WARMUP)
const INTERVAL_US = Number(process.env.PROFILE_INTERVAL_US ?? 250)
const CALLGRIND = process.env.PROFILE_CALLGRIND === '1'
const HEAP = process.env.PROFILE_HEAP === '1' || process.env.PROFILE_HEAP === 'promoted'
const PROMOTED = process.env.PROFILE_HEAP === 'promoted'
const OUT = process.env.PROFILE_OUT ?? join(tmpdir(), 'moatless-profiles')
const SECRET = 'profile-session-secret-0123456789abcdef-0123456789'
const CLIENT_SECRET = 'profile-client-secret-0123456789abcdef'
if (!['session', 'bearer', 'bare', 'bare-headers', 'bare-same'].includes(TARGET)) throw new Error(`PROFILE_TARGET=${TARGET}: session, bearer, bare, bare-headers or bare-same`)

if (hasTaskset && process.env.PROFILE_ROLE === undefined) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })

const children: ChildProcess[] = []
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

/** Starts a helper process on CPU 1 and waits for the first message it sends. */
function startChild<T> (script: string[], env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = pin(1, [process.execPath, ...script])
    const child = spawn(cmd as string, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(child)
    child.once('message', (m: T) => resolve(m))
    child.once('exit', (code) => reject(new Error(`${script.join(' ')} exited ${code}`)))
  })
}

/** One load.mjs run on the load CPU (harness.ts); async so that this process keeps serving meanwhile. */
function load (url: string, headers: Record<string, string>, span: { duration: number } | { amount: number }): Promise<LoadRun> {
  return loadAsync({ url, headers, connections: CONNECTIONS, ...span, ...(RATE === undefined ? {} : { rate: RATE }) })
}

/** Runs a command to its end without blocking this process (which has to go on serving). */
function run (cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    spawn(cmd, args, { stdio: 'ignore' }).once('exit', (code) => code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`)))
  })
}

interface Proxy { url: string; headers: Record<string, string>; close (): Promise<void> }

async function bare (upstream: string): Promise<Proxy> {
  const { default: Fastify } = await import('fastify')
  const { default: httpProxy } = await import('@fastify/http-proxy')
  const app = Fastify({ logger: false })
  await app.register(httpProxy, { upstream })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const headers = TARGET === 'bare-headers' ? upstreamLikeHeaders(port) : TARGET === 'bare-same' ? await sessionLikeHeaders(port) : {}
  return { url: `http://127.0.0.1:${port}/page`, headers, close: () => app.close() }
}

/** For `bare-same`: what the session target is sent, with a cookie sealed the same way. */
async function sessionLikeHeaders (port: number): Promise<Record<string, string>> {
  const { Sealer } = await import('../src/authn/seal.js')
  const sealed = new Sealer(SECRET, 'cookie').seal({ s: 'x'.repeat(43), o: `http://wiki.localhost:${port}` })
  return { host: `wiki.localhost:${port}`, accept: 'application/json', cookie: `moatless_session=${sealed}` }
}

/**
 * For `bare-headers`: the request carries what Moatless sends upstream for a signed-in user
 * (a 700-byte assertion, identity and forwarding headers), so that bare forwarding does the
 * header work that is inherent to forwarding them.
 */
function upstreamLikeHeaders (port: number): Record<string, string> {
  const b64 = (n: number): string => Buffer.alloc(n, 'moatless').toString('base64url')
  return {
    host: `127.0.0.1:${port}`,
    'x-request-id': '0b6c4f1e-8a4e-4c39-9a51-3e0f5b2d7c11',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': `wiki.localhost:${port}`,
    'x-moatless-jwt-assertion': `${b64(80)}.${b64(300)}.${b64(64)}`,
    'x-moatless-user': 'user-1001',
    'x-moatless-email': 'alice@example.com',
    'x-moatless-groups': 'engineering',
    accept: 'application/json'
  }
}

async function moatless (upstream: string): Promise<Proxy> {
  const dist = process.env.PROFILE_DIST
  const src = dist === undefined || dist === '' ? '../src' : dist === '1' ? '../dist' : pathToFileURL(resolve(dist)).href
  const { build } = await import(`${src}/app.js`) as typeof import('../src/app.js')
  const { Sealer } = await import(`${src}/authn/seal.js`) as typeof import('../src/authn/seal.js')
  const { loadConfigText } = await import(`${src}/config/index.js`) as typeof import('../src/config/index.js')
  const { createLogger } = await import(`${src}/log.js`) as typeof import('../src/log.js')
  const { MemoryStore, RedisStore } = await import(`${src}/store/index.js`) as typeof import('../src/store/index.js')
  const { freePort } = await import('../test/helpers/ports.js')

  const port = await freePort()
  const from = `http://wiki.localhost:${port}`
  const authUrl = `http://auth.localhost:${port}`
  // The demo IdP runs in its own process: oidc-provider enables an AsyncLocalStorage, which
  // puts a hook on every promise of the process it runs in.
  const idp = await startChild<{ issuer: string }>([...process.execArgv, 'benchmarks/profile.ts'], { PROFILE_ROLE: 'idp', PROFILE_AUTH_URL: authUrl })
  const redis = STORE === 'redis' ? await (await import('../test/helpers/redis.js')).startRedis() : null
  const loaded = loadConfigText(stringify({
    listen: { address: '127.0.0.1', port },
    authenticate: { url: authUrl },
    idp: { issuer: idp.issuer, client_id: 'moatless', client_secret: CLIENT_SECRET },
    session: { secret: SECRET },
    ...(redis === null ? {} : { store: { redis: redis.url, key_prefix: 'profile:' } }),
    // The rule set of `npm run bench`.
    apps: [{
      name: 'wiki',
      from,
      to: upstream,
      identity_headers: true,
      rules: [
        { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
        { name: 'staff', allow: { domains: ['example.com'] } }
      ]
    }]
  }), 'profile.yaml', {})
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors))
  const config = loaded.loaded.config
  const store = redis === null ? new MemoryStore() : new RedisStore({ redis: redis.url, key_prefix: 'profile:', store_outage_grace: 30_000 })
  if (store instanceof RedisStore) await store.connect()
  const quiet = new Writable({ write (_c, _e, cb) { cb() } })
  const m = await build({ config, store, logger: createLogger({ ...(process.env.PROFILE_LOG_DEST === 'stdout' ? {} : { destination: quiet }), level: process.env.PROFILE_LOG_LEVEL ?? 'warn' }) })
  await m.app.listen({ host: '127.0.0.1', port })
  const headers: Record<string, string> = { host: `wiki.localhost:${port}`, accept: 'application/json' }
  if (TARGET === 'session') {
    const s = await m.sessions.create({ sub: 'user-1001', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: {}, tokens: '' })
    headers.cookie = `moatless_session=${new Sealer(SECRET, 'cookie').seal({ s: s.id, o: from })}`
  } else {
    headers.authorization = `Bearer ${await idToken(idp.issuer)}`
  }
  return {
    url: `http://127.0.0.1:${port}/page`,
    headers,
    async close () {
      await m.app.close()
      m.idp.close()
      await store.close()
      await redis?.close()
    }
  }
}

/** A real ID token from the demo IdP, signed in as alice (as `npm run bench` gets one). */
async function idToken (issuer: string): Promise<string> {
  const { idTokenFor } = await import('./harness.js')
  return await idTokenFor(issuer, 'alice', 'alice-password', CLIENT_SECRET)
}

if (process.env.PROFILE_ROLE === 'idp') {
  const { startIdp } = await import('../src/demo/idp.js')
  const idp = await startIdp({ clients: [{ client_id: 'moatless', client_secret: CLIENT_SECRET, redirect_uris: [`${process.env.PROFILE_AUTH_URL}/.moatless/callback`, 'http://rp.localhost/cb'] }] })
  process.send?.({ issuer: idp.issuer })
  process.on('disconnect', () => process.exit(0))
  await new Promise(() => {})
}

const upstream = `http://127.0.0.1:${(await startChild<{ port: number }>(['benchmarks/upstream.mjs'])).port}`
const proxy = TARGET.startsWith('bare') ? await bare(upstream) : await moatless(upstream)
const check = await request(proxy.url, { headers: proxy.headers })
await check.body.text()
if (check.statusCode !== 200) throw new Error(`${TARGET} answers ${check.statusCode}; fix the setup before profiling`)

await load(proxy.url, proxy.headers, WARMUP === undefined ? { duration: 2 } : { amount: WARMUP })
const sync = process.env.PROFILE_SYNC
if (sync !== undefined && sync !== '') {
  writeFileSync(`${sync}.${process.pid}.ready`, '')
  while (!existsSync(`${sync}.go`)) await new Promise((resolve) => setTimeout(resolve, 20))
}
const inspector = INTERVAL_US > 0 || HEAP ? new Session() : null
if (inspector !== null && HEAP) {
  inspector.connect()
  await inspector.post('HeapProfiler.enable')
  await inspector.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !PROMOTED } as { samplingInterval: number })
} else if (inspector !== null) {
  inspector.connect()
  await inspector.post('Profiler.enable')
  await inspector.post('Profiler.setSamplingInterval', { interval: INTERVAL_US })
  await inspector.post('Profiler.start')
}
if (CALLGRIND) await run('callgrind_control', ['--instr=on', String(process.pid)])
const ioBefore = syscalls()
const cpuBefore = process.cpuUsage()
const r = await load(proxy.url, proxy.headers, REQUESTS === undefined ? { duration: SECONDS } : { amount: REQUESTS })
const cpu = process.cpuUsage(cpuBefore)
const ioAfter = syscalls()
if (CALLGRIND) await run('callgrind_control', ['--instr=off', String(process.pid)])
const requests = r.sent
console.error(`${TARGET} (${TARGET.startsWith('bare') ? 'no store' : `${STORE} store`}${hasTaskset ? ', pinned to CPU 0' : ''}): ${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ` +
  `${((cpu.user + cpu.system) / requests).toFixed(1)} µs CPU/request, ${requests} requests, non-2xx ${r.non2xx}, errors ${r.errors}` +
  (ioBefore === null || ioAfter === null ? '' : `, syscalls/request: ${((ioAfter.syscr - ioBefore.syscr) / requests).toFixed(2)} read, ${((ioAfter.syscw - ioBefore.syscw) / requests).toFixed(2)} write`))
if (inspector !== null && HEAP) {
  const { profile } = await inspector.post('HeapProfiler.stopSampling')
  inspector.disconnect()
  printAllocations(profile.head, requests)
} else if (inspector !== null) {
  const { profile } = await inspector.post('Profiler.stop')
  inspector.disconnect()
  mkdirSync(OUT, { recursive: true })
  const file = join(OUT, `${TARGET}-${STORE}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`)
  writeFileSync(file, JSON.stringify(profile))
  console.log(`profile: ${file}`)
}
await proxy.close()
process.exit(0)

/** Read and write system calls of this process so far (Linux /proc/self/io), or null. */
function syscalls (): { syscr: number; syscw: number } | null {
  try {
    const io = readFileSync('/proc/self/io', 'utf8')
    return { syscr: Number(/syscr: (\d+)/.exec(io)?.[1]), syscw: Number(/syscw: (\d+)/.exec(io)?.[1]) }
  } catch { return null }
}

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }
/** Bytes allocated per request: by function (self), and by the package or file it is in. */
function printAllocations (head: HeapNode, requests: number): void {
  const byFn = new Map<string, number>()
  const bySource = new Map<string, number>()
  let total = 0
  const who = process.env.PROFILE_HEAP_WHO
  const callers = new Map<string, number>()
  const walk = (n: HeapNode, stack: string[] = []): void => {
    const f = n.callFrame
    const here = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/node_modules\//, '')}:${f.lineNumber + 1}`
    if (who !== undefined && n.selfSize > 0 && here.startsWith(who)) {
      const path = stack.slice(-6).join(' < ')
      callers.set(path, (callers.get(path) ?? 0) + n.selfSize)
    }
    const url = f.url.replace(/^file:\/\//, '')
    const source = url === '' ? '(native)' : url.includes('/node_modules/') ? url.replace(/^.*\/node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1') : url.startsWith('node:') ? 'node' : url.replace(/^.*\/(src|dist)\//, '$1/')
    const key = `${f.functionName || '(anonymous)'} ${url.replace(/^.*\/node_modules\//, '')}:${f.lineNumber + 1}`
    byFn.set(key, (byFn.get(key) ?? 0) + n.selfSize)
    bySource.set(source, (bySource.get(source) ?? 0) + n.selfSize)
    total += n.selfSize
    for (const c of n.children) walk(c, [here, ...stack].slice(0, 8))
  }
  walk(head)
  for (const [k, v] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.error(`  ${(v / requests).toFixed(0).padStart(7)}  ${who} < ${k}`)
  const per = (b: number): string => (b / requests).toFixed(0).padStart(7)
  console.error(`allocated: ${per(total)} bytes/request (sampled)`)
  for (const [k, v] of [...bySource].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.error(`  ${per(v)}  ${k}`)
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.PROFILE_HEAP_TOP ?? 40))) console.error(`  ${per(v)}  ${k}`)
}
