/**
 * npm run bench: the whole chain against bare forwarding against direct, on one local origin,
 * plus the decision micro-benchmark, sign-in time and memory against live sessions.
 *
 * Phases (all in one run, in this order):
 *  load      Same upstream (1 KiB body), one autocannon process per run. Targets:
 *              direct            the upstream directly
 *              bare              fastify + @fastify/http-proxy, no auth
 *              bare-tls          the same over TLS, asking for client certificates (as Moatless does)
 *              session           Moatless on the Redis store, a signed-in session cookie
 *                                (log level BENCH_LOG_LEVEL, default warn: decision lines dropped)
 *              session-logged    the same at level info, the default: every decision line written
 *              bearer            Moatless, `Authorization: Bearer <IdP ID token>`
 *              device            Moatless over TLS with `listen.tls.client_ca`: session cookie +
 *                                an enrolled device's client certificate on every request; the
 *                                app allows only devices at trust level `managed`
 *            Closed loop (each connection sends its next request when the last one is answered):
 *            req/s is capacity, and latency at saturation is mostly queueing. So bare and session
 *            also run at a fixed rate well below capacity (BENCH_FIXED_RATE req/s over 8
 *            connections, sent at even intervals whatever the answers: an open loop, see
 *            load.mjs), where p99 shows the per-request overhead instead.
 *            Rounds interleave the targets so machine drift hits all alike; each target's
 *            figures are the median of its rounds. Then side by side: each Moatless target and
 *            its bare baseline loaded at the same time, both proxies on the same CPU, so drift
 *            hits both in the same instant, both sent the same requests (the Moatless target's
 *            headers); their req/s ratio is the one the targets use. After each session run,
 *            the same pair side by side at half of BENCH_FIXED_RATE each (the same load in
 *            total; one load process sends each request to both at once): the p99 difference
 *            the targets use. Then the same protocol with a second bare proxy in Moatless's
 *            place (A/A): the method's own noise, beyond which a miss counts as one. Latency
 *            percentiles are exact (every 2xx response time, sub-millisecond). Redis, steady
 *            state (after warm-up): INFO commandstats around every run gives commands per
 *            request (every client, timers included); MONITOR over the same runs sorts each command by its key into timers
 *            (rule polling, decision-sample flush) and the request path (sessions, devices...):
 *            the target is about the request path.
 *  decision  benchmarks/decision.ts on the proxy CPU, BENCH_DECISION_RUNS times (default 5), each
 *            run in a process of its own, so in a heap laid out anew: flat or not from 10 to
 *            10,000 apps and from 100 to 100,000 live sessions, from the median of the runs
 *            (combineRuns; see that file for the method).
 *  signin    benchmarks/signin.ts: real sign-ins against the embedded IdP; callback + handoff
 *            server time from the proxy's decision log, minus the time the proxy spent waiting
 *            on the IdP (traced inside the proxy process; see that file).
 *  rss       benchmarks/rss.ts: RSS of a fresh proxy with `session.cache_size` set to
 *            BENCH_RSS_CACHE as 10k / 20k / 50k / 100k sessions go through its caches (also after
 *            a forced GC): bounded by the configured limit, not by the sessions used.
 * The proxies run pinned to CPU 0; the upstream, the load generator, this process (the IdP, the
 * sign-in client) and redis-server to CPU 1 (taskset).
 * Moatless is the built `dist/` (bin/moatless.js serve): run `npm run build` first after changes.
 * Results: benchmarks/results/latest.{json,md}; a "Targets" block says what was met.
 *
 * Environment (all optional), to shorten runs while iterating:
 *   BENCH_PHASES=load,decision,signin,rss   phases to run (default all)
 *   BENCH_TARGETS=direct,bare,bare-tls,session,session-logged,bearer,device   load targets (default all)
 *   BENCH_SIDE_RUNS=5  side-by-side runs per Moatless target; each with both proxies started afresh
 *   BENCH_SIDE_WARMUP_SECONDS=5  the warm-up before each of them, both loaded at once (JIT still improves Moatless
 *                      by ~2 % between 6,000 and 40,000 requests: profile.ts, NOTES fourth round)
 *   BENCH_ROUNDS=3  BENCH_SECONDS=5  BENCH_WARMUP_SECONDS=2  BENCH_CONNECTIONS=32
 *   BENCH_LATENCY_SECONDS=20  (each latency side-by-side run, A/A included: the p99 of 10,000
 *     requests a side instead of 2,500. At 5 s two bare proxies measured against each other
 *     came out 1.53 ms apart in the median run on a noisy VM (0.11-1.12 ms on others), which
 *     is more than the 1 ms tolerance itself; at 20 s, 0.32 ms (NOTES, eleventh round))
 *   BENCH_FIXED_RATE=1000  (req/s for the fixed-rate runs of bare and session, interleaved and
 *     side by side; 0: skip them)
 *   BENCH_PROXY_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR'  (node flags for the session/bearer proxy)
 *   BENCH_SIGNIN_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR'  (node flags for the sign-in phase's proxy)
 *   BENCH_LOG_LEVEL=warn  (log level of the `session`, `bearer` proxy; `session-logged` always runs at info, the
 *     default, writing every decision line to /dev/null)
 *   BENCH_SIGNINS=100  BENCH_SIGNIN_WARMUP=10  (sign-ins measured, after warm-up sign-ins not counted: a
 *     proxy in service has run its sign-in code before, so the JIT has compiled it. With 20 sign-ins
 *     the p50 moved by up to 0.8 ms between runs of the same code; 100 take ~20 s)
 *   BENCH_RSS_SESSIONS=10000,20000,50000,100000
 *   BENCH_RSS_CACHE=20000  (session.cache_size of the rss proxy; at least 100)
 *   DECISION_REPS=80  DECISION_TARGET_MS=6  DECISION_BUDGET_S=10  (see benchmarks/decision.ts)
 *   BENCH_DECISION_RUNS=5  (decision micro-benchmark runs, each in a fresh process; ~30 s each)
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { Sealer } from '../src/authn/seal.js'
import { Sessions } from '../src/authn/sessions.js'
import { startIdp } from '../src/demo/idp.js'
import { RedisStore, type DeviceRecord } from '../src/store/index.js'
import { freePorts } from '../test/helpers/ports.js'
import { startRedis } from '../test/helpers/redis.js'
import { createTestCa } from '../test/helpers/tls.js'
import { combineRuns, type DecisionResult } from './decision-result.js'
import {
  idTokenFor,
  CLIENT_SECRET, commandPurpose, commandStats, cpuMs, distIsStale, loadAsync, loadPairAsync, hasTaskset, type PairedDifference, load, LOAD_CPU, median, notOk, pin, PROXY_CPU, RedisWatch, round, SESSION_SECRET,
  startMoatless, startScript, statsDelta, stopAll, stopChild, sumOf, type LoadOptions, type LoadRun, type MoatlessProcess
} from './harness.js'
import { measureRss, RSS_REFERENCE_FACTOR, RSS_TOLERANCE, type RssResult } from './rss.js'
import { instrumentIdp, measureSignIn, type SignInResult } from './signin.js'

const list = (v: string | undefined, all: string[]): string[] => v === undefined || v.trim() === '' ? all : v.split(',').map((s) => s.trim()).filter((s) => s !== '')
const PHASES = new Set(list(process.env.BENCH_PHASES, ['load', 'decision', 'signin', 'rss']))
const TARGET_KEYS = list(process.env.BENCH_TARGETS, ['direct', 'bare', 'bare-tls', 'session', 'session-logged', 'bearer', 'device'])
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SIDE_RUNS = Number(process.env.BENCH_SIDE_RUNS ?? 5)
const SIDE_WARMUP_SECONDS = Number(process.env.BENCH_SIDE_WARMUP_SECONDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 20)
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? 1000)
const FIXED_RATE_CONNECTIONS = 8
/** Moatless's log level in the load phase. info: every decision line is written (to /dev/null). */
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn'
/** Extra node flags for the session/bearer proxy of the load phase, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`. */
const nodeArgs = (v: string | undefined): string[] => (v ?? '').split(' ').filter((a) => a !== '')
const PROXY_NODE_ARGS = nodeArgs(process.env.BENCH_PROXY_NODE_ARGS)
const SIGNIN_NODE_ARGS = nodeArgs(process.env.BENCH_SIGNIN_NODE_ARGS)
const DECISION_RUNS = Math.max(1, Number(process.env.BENCH_DECISION_RUNS ?? 5))
const SIGNINS = Number(process.env.BENCH_SIGNINS ?? 100)
const SIGNIN_WARMUP = Number(process.env.BENCH_SIGNIN_WARMUP ?? 10)
const RSS_STAGES = list(process.env.BENCH_RSS_SESSIONS, ['10000', '20000', '50000', '100000']).map(Number)
const RSS_CACHE = Number(process.env.BENCH_RSS_CACHE ?? 20000)

/** The issue's numbers. */
const GOAL = { rpsVsBare: 0.85, p99OverBareMs: 1, redisPerRequest: 0.001, flat: 0.10, signinMs: 5, rssGrowth: RSS_TOLERANCE }

interface Target {
  key: string
  name: string
  transport: 'http' | 'tls'
  moatless: boolean
  /** Fixed-rate runs: the target they are a slower copy of, and their rate. */
  fixedRate?: { of: string; rate: number }
  load: Omit<LoadOptions, 'connections' | 'duration' | 'amount'>
  /** undici dispatcher for the setup check (TLS targets). */
  dispatcher?: Agent
  /** The proxy's process: its CPU time per request; side by side starts it afresh. */
  proc?: Proc
}

/** A proxy process that side by side can start afresh, on the same port with the same config. */
interface Proc { pid: number; kill (): Promise<void>; restart (): Promise<void> }

async function restartable (start: () => Promise<{ child: ChildProcess }>): Promise<Proc> {
  let current = await start()
  const p: Proc = {
    pid: current.child.pid as number,
    kill: async () => await stopChild(current.child),
    async restart () {
      await stopChild(current.child)
      current = await start()
      p.pid = current.child.pid as number
    }
  }
  return p
}

/** A helper script (bare-proxy.mjs) as a Proc that starts again on the port it first got. */
async function restartableScript (script: string, env: Record<string, string>): Promise<Proc & { port: number }> {
  let port = 0
  const proc = await restartable(async () => {
    const started = await startScript(PROXY_CPU, script, { ...env, PORT: String(port) })
    port = started.port
    return started
  })
  return Object.assign(proc, { port })
}
/**
 * Side by side: a Moatless target and its bare baseline loaded at the same time, both proxies
 * pinned to the same CPU, so they share it (the scheduler gives each half) and whatever the
 * machine does hits both in the same instant. Their req/s ratio is then the ratio of what a
 * request costs each: bare's cost / Moatless's, i.e. Moatless's req/s as a share of bare's.
 * Both are sent the same requests (the Moatless target's headers: Host, the session cookie or
 * bearer token, Accept); bare forwards them as they are. A browser sends its cookie to a bare
 * proxy too, so the difference is what deciding costs, not what parsing a cookie costs.
 * Every run starts both processes afresh: runs within one pair of processes
 * agreed within a point or two, while invocations minutes apart gave 82.2, 83.4 and 86.7 % for
 * the same build on this VM, so one pair's runs are not independent samples.
 */
interface SideBySideRound { rps: number; base_rps: number; ratio: number; cpu_us: number | null; base_cpu_us: number | null; p99_ms: number; base_p99_ms: number }
interface SideBySide {
  key: string; base: string; target: string; rounds: SideBySideRound[]; ratio: number; cpu_ratio: number | null
  /**
   * Redis over the same runs, from the end of each warm-up to the end of the run (its latency
   * run included): MONITOR, sorted as in the interleaved rounds. These runs go on for minutes
   * after the interleaved ones, past timers the rounds never reach: the session's re-check at
   * the IdP (`session.refresh_interval`, 5 min) once started a lease, a read and a release on
   * every request here while the rounds counted 3 commands in all (NOTES, thirteenth round).
   */
  requests: number; redis_request_path_commands: number; redis_request_path_per_request: number | null; redis_by_purpose: Record<string, number>
}
/**
 * Latency side by side: the session target and bare offered the same fixed rate at the same
 * time (same CPU, same requests, sent at even intervals: load.mjs's open loop; autocannon's
 * overallRate sends each second's share in a burst at full speed, which measured queueing
 * again), so a stall of the VM lands in both runs' tails at once. One load process sends each
 * request to both at the same instant (load.mjs `pair`): with a load process each, a pause of
 * one (its GC, its turn on the shared load CPU) landed in one tail only, and two bare proxies
 * measured against each other this way differed by 1.53 ms in the median run (-5.59 to +6.49
 * ms); from one process, by 0.12 ms (-1.33 to +0.12; NOTES, eighth round). At
 * this rate neither proxy is saturated, so p99 - bare's p99 is the latency the decision adds,
 * not queueing (saturated, p99 is about connections / req/s: a proxy at 90 % of bare's req/s
 * has a p99 about 11 % higher, whatever its own latency).
 * Each run follows one session side-by-side run at once, on the same pair: fresh and warm.
 * Run after all the side-by-side targets instead, the pair had been idle for the ~70 s of the
 * device runs, in which V8 shrank both heaps (Moatless's young generation from ~14 MB to ~1 MB);
 * at 500 req/s it grew back only to ~6 MB within the runs, with minor GCs 3-4 times as often and
 * a major GC with a 32 ms step, and the runs gave +0.33 to +16.15 ms (NOTES, seventh round).
 */
type LatencyRun = { p50_ms: number; base_p50_ms: number; p99_ms: number; base_p99_ms: number; p99_over_ms: number; requests: number; base_requests: number; paired_p50_ms: number; /** every request the target was sent, the unrecorded first second included */ sent: number }
/**
 * `noise`: the same runs with a second bare proxy in Moatless's place (A/A): how far apart two
 * identical proxies come out, the method's own error. The target counts as inconclusive, not as
 * missed, while Moatless's difference is within the tolerance plus that noise.
 */
interface LatencySideBySide { key: string; base: string; rate: number; connections: number; runs: LatencyRun[]; p99_over_bare_ms: number; noise: { runs: LatencyRun[]; p99_abs_ms: number } | null }

/** `t` and its bare `b` loaded at once, as fast as they answer, both sent `t`'s requests (see SideBySide). */
function sideBySideLoad (t: Target, b: Target, duration: number): Promise<[LoadRun, LoadRun]> {
  return Promise.all([loadAsync({ ...t.load, duration, connections: CONNECTIONS }), loadAsync({ ...b.load, headers: t.load.headers, duration, connections: CONNECTIONS })])
}

/** MONITORed commands sorted by what each was for (commandPurpose): timers apart from the request path. */
function byPurposeOf (commands: string[][]): { byPurpose: Record<string, number>; requestPath: number; timers: number } {
  const byPurpose: Record<string, number> = {}
  let requestPath = 0
  let timers = 0
  for (const args of commands) {
    const p = commandPurpose(args)
    byPurpose[p.purpose] = (byPurpose[p.purpose] ?? 0) + 1
    if (p.timer) timers++; else requestPath++
  }
  return { byPurpose, requestPath, timers }
}

/** Commands by purpose as one line of text ("get session 2, set session 1"), or "none". */
function purposesText (byPurpose: Record<string, number>): string {
  return Object.entries(byPurpose).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
}

/** "3/84375 = 0.000036": request-path commands over requests, for the Targets block. */
function requestPathText (x: { redis_request_path_commands: number; requests: number; redis_request_path_per_request: number | null }): string {
  return `${x.redis_request_path_commands}/${x.requests} = ${x.redis_request_path_per_request ?? 'not measured'}`
}

/** One latency side-by-side run (see LatencySideBySide) of target `t` against its bare `b`. */
async function latencySideBySide (t: Target, b: Target, r: number): Promise<LatencyRun> {
  // Half the rate each: together the machine carries the load of the interleaved fixed-rate runs.
  const at = { duration: LATENCY_SECONDS, connections: FIXED_RATE_CONNECTIONS / 2, rate: FIXED_RATE / 2 }
  // Which of the two the load process lists first alternates between runs, so that any edge
  // the first (or second) place gives cannot favour one side in the median.
  let x: LoadRun, y: LoadRun, paired: PairedDifference
  if (r % 2 === 0) {
    [x, y, paired] = await loadPairAsync({ ...t.load, ...at }, { url: b.load.url, headers: t.load.headers })
  } else {
    [y, x, paired] = await loadPairAsync({ ...b.load, headers: t.load.headers, ...at }, { url: t.load.url, headers: t.load.headers })
  }
  // The target's latency minus bare's, per request: the load process reports first minus second.
  const perRequest = r % 2 === 0 ? paired.p50 : -paired.p50
  const bad = notOk(x, y)
  const over = round(x.p99 - y.p99, 2)
  console.log(`  latency side by side ${r + 1} at ${FIXED_RATE / 2} req/s each: ${t.name} p50 ${x.p50} ms, p99 ${x.p99} ms | ${b.name} p50 ${y.p50} ms, p99 ${y.p99} ms -> p99 ${over >= 0 ? '+' : ''}${over} ms; per request ${ms(perRequest)} (median of ${paired.requests} paired)${bad > 0 ? `, ${bad} not 2xx/errors` : ''}`)
  return { p50_ms: x.p50, base_p50_ms: y.p50, p99_ms: x.p99, base_p99_ms: y.p99, p99_over_ms: over, requests: x.total, base_requests: y.total, paired_p50_ms: perRequest, sent: x.sent }
}

interface TargetSummary {
  key: string
  fixed_rate: number | null
  target: string
  transport: 'http' | 'tls'
  rps: number
  p50_ms: number
  p99_ms: number
  requests: number
  not_2xx: number
  /** req/s over the bare proxy's (HTTP) in the same round, median of the rounds. */
  vs_bare: number | null
  /** The same against the bare proxy on the same transport (HTTP or TLS), with each round's ratio. */
  vs_bare_same_transport: number | null
  vs_bare_same_transport_rounds: number[]
  vs_direct: number | null
  /** p99 minus the same-transport bare proxy's p99 in the same round, median of the rounds. */
  p99_over_bare_same_transport_ms: number | null
  /** The proxy process's CPU time (user + system) per request, median of the rounds. */
  cpu_us_per_request: number | null
  /** Bare's CPU per request / this target's, same transport, same round (median): requests per CPU-second relative to bare. */
  cpu_capacity_vs_bare: number | null
  /** INFO commandstats delta over this target's runs (every client: also timers, other replicas). */
  redis_commands: number
  redis_commands_per_request: number | null
  redis_by_command: Record<string, number>
  /** MONITOR over the same runs, by what each command was for (key). */
  redis_by_purpose: Record<string, number>
  /** Commands that are not timers (rule polling, decision-sample flushes): sessions, devices, ... */
  redis_request_path_commands: number
  redis_request_path_per_request: number | null
  redis_timer_commands_per_second: number
}

const started = Date.now()
const elapsed = (): string => `${Math.round((Date.now() - started) / 1000)} s`

async function main (): Promise<void> {
  // This process (the embedded IdP, the sign-in client, Redis MONITOR) and the redis-server it
  // starts belong with the origin and the load, on the load CPU, off the proxies' CPU. Left
  // unpinned, the IdP's work after answering a sign-in's token request could take the proxy
  // CPU while the proxy finished that sign-in: sign-in p50 5.26-6.29 ms unpinned, 4.56-5.06
  // pinned on one evening's VM (NOTES, eighth round).
  if (hasTaskset) execFileSync('taskset', ['-a', '-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' })
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version, pinned: hasTaskset }
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, Node ${machine.node}${hasTaskset ? ', proxies on CPU 0, upstream + load generator + IdP + Redis on CPU 1' : ', not pinned (no taskset or < 2 cores)'}`)
  const stale = distIsStale()
  if (stale !== null) console.log(`WARNING: dist/ is older than ${stale}: the bench runs the built proxy; run \`npm run build\` first`)

  // Throwaway X.509: a server certificate for the TLS listeners, a device CA and one device.
  const serverCa = await createTestCa('Bench Server CA')
  const deviceCa = await createTestCa('Bench Device CA')
  const serverCert = await serverCa.issue({ commonName: 'moatless-bench', dns: ['auth.localhost', 'wiki.localhost'], ips: ['127.0.0.1'] })
  const deviceCert = await deviceCa.issue({ commonName: 'bench-laptop', usage: 'client' })
  const certDir = mkdtempSync(join(tmpdir(), 'moatless-bench-certs-'))
  const certs = { serverCa: join(certDir, 'server-ca.crt'), cert: join(certDir, 'proxy.crt'), key: join(certDir, 'proxy.key'), deviceCa: join(certDir, 'device-ca.crt'), deviceCert: join(certDir, 'device.crt'), deviceKey: join(certDir, 'device.key') }
  writeFileSync(certs.serverCa, serverCa.cert)
  writeFileSync(certs.cert, serverCert.cert)
  writeFileSync(certs.key, serverCert.key)
  writeFileSync(certs.deviceCa, deviceCa.cert)
  writeFileSync(certs.deviceCert, deviceCert.cert)
  writeFileSync(certs.deviceKey, deviceCert.key)
  const deviceTls = { ca: certs.serverCa, cert: certs.deviceCert, key: certs.deviceKey }

  const redis = await startRedis()
  const rc = new Redis(redis.url)
  const { port: upstreamPort } = await startScript(1, 'benchmarks/upstream.mjs', {})
  const upstream = `http://127.0.0.1:${upstreamPort}`

  // Every Moatless instance gets its ports (and IdP redirect URI) up front.
  // Ten different ports, held until all are found (one after another, the same port can come twice).
  const [p0, p1, p2, p3, p4, a0, a1, a2, a3, a4] = (await freePorts(10)) as [number, number, number, number, number, number, number, number, number, number]
  const ports = { main: p0, logged: p1, tls: p2, signin: p3, rss: p4 }
  const admin = { main: a0, logged: a1, tls: a2, signin: a3, rss: a4 }
  const authOf = (scheme: string, port: number): string => `${scheme}://auth.localhost:${port}`
  const fromOf = (scheme: string, port: number): string => `${scheme}://wiki.localhost:${port}`
  const idp = await startIdp({
    clients: [{
      client_id: 'moatless',
      client_secret: CLIENT_SECRET,
      redirect_uris: [
        `${authOf('http', ports.main)}/.moatless/callback`, `${authOf('https', ports.tls)}/.moatless/callback`,
        `${authOf('http', ports.signin)}/.moatless/callback`, `${authOf('http', ports.rss)}/.moatless/callback`, 'http://rp.localhost/cb'
      ]
    }]
  })
  const idpCalls = instrumentIdp(idp.port)

  const config = (o: { port: number; adminPort: number; prefix: string; tls?: boolean; device?: boolean }): string => {
    const scheme = o.tls === true ? 'https' : 'http'
    return `listen:
  address: 127.0.0.1
  port: ${o.port}${o.tls === true ? `
  tls: { cert: "${certs.cert}", key: "${certs.key}", client_ca: "${certs.deviceCa}" }` : ''}
admin: { address: 127.0.0.1, port: ${o.adminPort} }
authenticate: { url: "${authOf(scheme, o.port)}" }
idp:
  issuer: "${idp.issuer}"
  client_id: moatless
  client_secret: \${MOATLESS_CLIENT_SECRET}
session:
  secret: \${MOATLESS_SESSION_SECRET}
store:
  redis: "${redis.url}"
  key_prefix: "${o.prefix}"
${o.device === true
? `device_trust:
  report_max_age: 24h
  levels:
    - name: known
      require: { enrolled: true }
    - name: managed
      require: { managed: true, disk_encrypted: true, screen_lock: true }
`
: ''}apps:
  - name: wiki
    from: "${fromOf(scheme, o.port)}"
    to: "${upstream}"
    identity_headers: true
    rules:
      - name: no-contractors-in-admin
        deny: { groups: [contractors], paths: ["/admin/**"] }
${o.device === true
? `      - name: staff-on-managed-devices
        allow: { domains: [example.com], device: { trust: managed } }
`
: `      - name: staff
        allow: { domains: [example.com] }
`}`
  }

  const stores: RedisStore[] = []
  const storeFor = async (prefix: string): Promise<RedisStore> => {
    const s = new RedisStore({ redis: redis.url, key_prefix: prefix, store_outage_grace: 30_000 })
    await s.connect()
    stores.push(s)
    return s
  }
  /** A signed-in session, stored the way the callback stores it, and its sealed cookie for `from`. */
  const signedIn = async (store: RedisStore, from: string): Promise<string> => {
    const now = Date.now()
    const id = Sessions.newId()
    await store.putSession({ id, sub: 'user-1001', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: {}, tokens: '', created_at: now, last_seen: now, expires_at: now + 3_600_000, refreshed_at: now }, 3_600_000)
    const name = from.startsWith('https:') ? '__Host-moatless_session' : 'moatless_session'
    return `${name}=${new Sealer(SESSION_SECRET, 'cookie').seal({ s: id, o: from })}`
  }

  const result: Record<string, unknown> = { date: new Date().toISOString(), machine, phases: [...PHASES] }
  let summary: TargetSummary[] = []
  let sideBySide: SideBySide[] = []
  let latencySide: LatencySideBySide | null = null
  let idleCommandsPerSecond: number | null = null

  // ---------------------------------------------------------------- load
  if (PHASES.has('load')) {
    const want = new Set(TARGET_KEYS)
    const needsMain = want.has('session') || want.has('bearer')
    const procs: Proc[] = []
    const targets: Target[] = []
    if (want.has('direct')) targets.push({ key: 'direct', name: 'direct (upstream)', transport: 'http', moatless: false, load: { url: `${upstream}/page`, headers: {} } })
    // The bare baselines always run: every ratio is taken against them.
    const bare = await restartableScript('benchmarks/bare-proxy.mjs', { UPSTREAM: upstream })
    procs.push(bare)
    targets.push({ key: 'bare', name: 'bare @fastify/http-proxy', transport: 'http', moatless: false, proc: bare, load: { url: `http://127.0.0.1:${bare.port}/page`, headers: {} } })
    if (want.has('bare-tls') || want.has('device')) {
      const bareTls = await restartableScript('benchmarks/bare-proxy.mjs', { UPSTREAM: upstream, TLS_CERT: certs.cert, TLS_KEY: certs.key, TLS_CLIENT_CA: certs.deviceCa })
      procs.push(bareTls)
      targets.push({ key: 'bare-tls', name: 'bare @fastify/http-proxy over TLS (client cert)', transport: 'tls', moatless: false, proc: bareTls, load: { url: `https://127.0.0.1:${bareTls.port}/page`, headers: { host: `wiki.localhost:${bareTls.port}` }, servername: 'wiki.localhost', tls: deviceTls }, dispatcher: tlsAgent(serverCa.cert, deviceCert) })
    }
    if (needsMain) {
      const m = await restartable(async () => await startMoatless(config({ port: ports.main, adminPort: admin.main, prefix: 'bench:' }), { port: ports.main, adminPort: admin.main, level: LOG_LEVEL, nodeArgs: PROXY_NODE_ARGS }))
      procs.push(m)
      const from = fromOf('http', ports.main)
      const host = `wiki.localhost:${ports.main}`
      if (want.has('session')) {
        const cookie = await signedIn(await storeFor('bench:'), from)
        targets.push({ key: 'session', name: 'moatless, session cookie (Redis store)', transport: 'http', moatless: true, proc: m, load: { url: `http://127.0.0.1:${ports.main}/page`, headers: { host, cookie, accept: 'application/json' } } })
      }
      if (want.has('bearer')) {
        const idToken = await idTokenFor(idp.issuer, 'alice', 'alice-password')
        targets.push({ key: 'bearer', name: 'moatless, bearer token', transport: 'http', moatless: true, proc: m, load: { url: `http://127.0.0.1:${ports.main}/page`, headers: { host, authorization: `Bearer ${idToken}`, accept: 'application/json' } } })
      }
    }
    if (want.has('session-logged')) {
      // The same as `session`, at the default log level: every decision line written (stdout, to /dev/null).
      const m = await restartable(async () => await startMoatless(config({ port: ports.logged, adminPort: admin.logged, prefix: 'bench-logged:' }), { port: ports.logged, adminPort: admin.logged, level: 'info' }))
      procs.push(m)
      const cookie = await signedIn(await storeFor('bench-logged:'), fromOf('http', ports.logged))
      targets.push({ key: 'session-logged', name: 'moatless, session cookie, every decision logged (level info)', transport: 'http', moatless: true, proc: m, load: { url: `http://127.0.0.1:${ports.logged}/page`, headers: { host: `wiki.localhost:${ports.logged}`, cookie, accept: 'application/json' } } })
    }
    if (want.has('device')) {
      const store = await storeFor('bench-tls:')
      const now = Date.now()
      const device: DeviceRecord = {
        id: 'bench-laptop', owner: 'alice@example.com', cert_fingerprints: [deviceCert.fingerprint], public_keys: [], managed: true, corp_owned: true,
        posture: { os: 'macos', os_version: '14.6', disk_encrypted: true, screen_lock: true, firewall: true, reported_at: now },
        status: 'active', created_at: now, updated_at: now
      }
      await store.putDevice(device)
      const m = await restartable(async () => await startMoatless(config({ port: ports.tls, adminPort: admin.tls, prefix: 'bench-tls:', tls: true, device: true }), { port: ports.tls, adminPort: admin.tls, level: LOG_LEVEL }))
      procs.push(m)
      const cookie = await signedIn(store, fromOf('https', ports.tls))
      const t: Target = { key: 'device', name: 'moatless over TLS, device cert (managed) + session', transport: 'tls', moatless: true, proc: m, load: { url: `https://127.0.0.1:${ports.tls}/page`, headers: { host: `wiki.localhost:${ports.tls}`, cookie, accept: 'application/json' }, servername: 'wiki.localhost', tls: deviceTls }, dispatcher: tlsAgent(serverCa.cert, deviceCert) }
      // The rule must be what is exercised: without the device certificate the same session is refused.
      const without = await request(t.load.url, { headers: t.load.headers, dispatcher: tlsAgent(serverCa.cert) })
      await without.body.text()
      if (without.statusCode !== 403) throw new Error(`device target: without the client certificate expected 403, got ${without.statusCode}`)
      targets.push(t)
    }
    const order = ['direct', 'bare', 'bare-tls', 'session', 'session-logged', 'bearer', 'device']
    targets.sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key))
    if (FIXED_RATE > 0) {
      for (const key of ['bare', 'session']) {
        const t = targets.find((x) => x.key === key)
        if (t !== undefined) targets.push({ ...t, key: `${key}@rate`, name: `${t.name}, fixed ${FIXED_RATE} req/s`, fixedRate: { of: key, rate: FIXED_RATE } })
      }
    }

    // Check each target answers 200 before measuring anything.
    for (const t of targets) {
      const r = await request(t.load.url, { headers: t.load.headers, ...(t.dispatcher === undefined ? {} : { dispatcher: t.dispatcher }) })
      await r.body.text()
      if (r.statusCode !== 200) throw new Error(`${t.name} answers ${r.statusCode}; fix the setup before measuring`)
    }

    console.log(`\n[load] warm-up ${WARMUP_SECONDS} s per target, then ${ROUNDS} interleaved rounds x ${SECONDS} s per target, ${CONNECTIONS} connections (${elapsed()})`)
    for (const t of targets) if (t.fixedRate === undefined) load({ ...t.load, connections: CONNECTIONS, duration: WARMUP_SECONDS })
    const runs = new Map<string, { run: LoadRun; commands: Map<string, number>; monitored: string[][]; cpuUsPerRequest: number | null }[]>(targets.map((t) => [t.key, []]))
    const watch = await RedisWatch.start(redis.url, rc)
    for (let r = 0; r < ROUNDS; r++) {
      // Every other round in reverse order, so that drift within a round favours no target.
      for (const t of r % 2 === 0 ? targets : [...targets].reverse()) {
        await watch.cut()
        const before = await commandStats(rc)
        const cpuBefore = cpuMs(t.proc?.pid)
        const res = load({ ...t.load, duration: SECONDS, ...(t.fixedRate === undefined ? { connections: CONNECTIONS } : { connections: FIXED_RATE_CONNECTIONS, rate: t.fixedRate.rate }) })
        const cpuAfter = cpuMs(t.proc?.pid)
        const commands = statsDelta(before, await commandStats(rc))
        const monitored = await watch.cut()
        const cpuUsPerRequest = cpuBefore === null || cpuAfter === null || res.sent === 0 ? null : round((cpuAfter - cpuBefore) * 1000 / res.sent, 1)
        runs.get(t.key)?.push({ run: res, commands, monitored, cpuUsPerRequest })
        const bad = notOk(res)
        console.log(`  round ${r + 1} ${t.name}: ${Math.round(res.rps)} req/s, p50 ${res.p50} ms, p99 ${res.p99} ms${cpuUsPerRequest === null ? '' : `, proxy CPU ${cpuUsPerRequest} µs/request`}, Redis commands ${sumOf(commands)}${bad > 0 ? `, ${bad} not 2xx/errors` : ''}`)
      }
    }
    watch.close()

    // Background Redis traffic (rule polling, ...) while no Moatless target is loaded.
    const idle = targets.filter((t) => !t.moatless && t.fixedRate === undefined).flatMap((t) => runs.get(t.key) ?? [])
    const idleSeconds = idle.reduce((n, x) => n + x.run.duration_s, 0)
    idleCommandsPerSecond = idleSeconds > 0 ? round(idle.reduce((n, x) => n + sumOf(x.commands), 0) / idleSeconds, 3) : null

    // Every comparison is made within a round (the two runs a few seconds apart), then the
    // median of the rounds is taken: machine drift between rounds cancels out.
    const perRound = (key: string, base: string | undefined, f: (x: { run: LoadRun; cpuUsPerRequest: number | null }, b: { run: LoadRun; cpuUsPerRequest: number | null }) => number | null): number[] => {
      const xs = runs.get(key) ?? []
      const bs = base === undefined ? [] : runs.get(base) ?? []
      const out: number[] = []
      for (let r = 0; r < Math.min(xs.length, bs.length); r++) {
        const v = f(xs[r] as { run: LoadRun; cpuUsPerRequest: number | null }, bs[r] as { run: LoadRun; cpuUsPerRequest: number | null })
        if (v !== null && Number.isFinite(v)) out.push(v)
      }
      return out
    }
    const medianOrNull = (xs: number[], digits: number): number | null => xs.length === 0 ? null : round(median(xs), digits)
    summary = targets.map((t) => {
      const rs = runs.get(t.key) ?? []
      const rps = median(rs.map((x) => x.run.rps))
      const p99 = median(rs.map((x) => x.run.p99))
      const sameKey = t.fixedRate !== undefined ? 'bare@rate' : t.transport === 'tls' ? 'bare-tls' : 'bare'
      const same = runs.has(sameKey) ? sameKey : undefined
      const capacity = t.fixedRate === undefined
      const ratioRounds = capacity ? perRound(t.key, same, (x, b) => round(x.run.rps / b.run.rps, 3)) : []
      const cpus = rs.map((x) => x.cpuUsPerRequest).filter((x): x is number => x !== null)
      const requests = rs.reduce((n, x) => n + x.run.total, 0)
      const byCommand: Record<string, number> = {}
      for (const x of rs) for (const [k, v] of x.commands) byCommand[k] = (byCommand[k] ?? 0) + v
      const commands = Object.values(byCommand).reduce((n, v) => n + v, 0)
      const { byPurpose, requestPath, timers } = byPurposeOf(rs.flatMap((x) => x.monitored))
      const seconds = rs.reduce((n, x) => n + x.run.duration_s, 0)
      return {
        key: t.key,
        fixed_rate: t.fixedRate?.rate ?? null,
        target: t.name,
        transport: t.transport,
        rps: Math.round(rps),
        p50_ms: round(median(rs.map((x) => x.run.p50))),
        p99_ms: round(p99),
        requests,
        not_2xx: notOk(...rs.map((x) => x.run)),
        vs_bare: capacity ? medianOrNull(perRound(t.key, 'bare', (x, b) => x.run.rps / b.run.rps), 3) : null,
        vs_bare_same_transport: medianOrNull(ratioRounds, 3),
        vs_bare_same_transport_rounds: ratioRounds,
        vs_direct: capacity ? medianOrNull(perRound(t.key, runs.has('direct') ? 'direct' : undefined, (x, b) => x.run.rps / b.run.rps), 3) : null,
        p99_over_bare_same_transport_ms: medianOrNull(perRound(t.key, same, (x, b) => x.run.p99 - b.run.p99), 2),
        cpu_us_per_request: cpus.length === 0 ? null : round(median(cpus), 1),
        cpu_capacity_vs_bare: capacity ? medianOrNull(perRound(t.key, same, (x, b) => x.cpuUsPerRequest === null || b.cpuUsPerRequest === null ? null : b.cpuUsPerRequest / x.cpuUsPerRequest), 3) : null,
        redis_commands: commands,
        redis_commands_per_request: t.moatless && capacity && requests > 0 ? round(commands / requests, 6) : null,
        redis_by_command: byCommand,
        redis_by_purpose: byPurpose,
        redis_request_path_commands: requestPath,
        redis_request_path_per_request: t.moatless && capacity && requests > 0 ? round(requestPath / requests, 6) : null,
        redis_timer_commands_per_second: seconds > 0 ? round(timers / seconds, 2) : 0
      }
    })

    // Side by side (see SideBySide): each Moatless target with its bare baseline, ROUNDS times.
    // Each session run is followed at once by a latency run on the same pair (see LatencySideBySide).
    const latencyRuns: LatencySideBySide['runs'] = []
    const sideWatch = await RedisWatch.start(redis.url, rc)
    for (const [key, baseKey] of [['session', 'bare'], ['session-logged', 'bare'], ['bearer', 'bare'], ['device', 'bare-tls']] as const) {
      const t = targets.find((x) => x.key === key)
      const b = targets.find((x) => x.key === baseKey)
      if (t === undefined || b === undefined) continue
      const rounds: SideBySideRound[] = []
      const redisSeen: string[][] = []
      let sent = 0
      for (let r = 0; r < SIDE_RUNS; r++) {
        // Every run with both proxies started afresh and warmed up together: a process's JIT and
        // heap layout are its own, and runs in one pair of processes agree with each other more
        // than with another pair (see SideBySide). The first run too: by then the processes of
        // the interleaved rounds have been idle for minutes (the other targets' runs), or, for
        // the first target, just loaded. Reused, the first run was the bearer target's lowest
        // in all four invocations of one evening (71.1, 71.8, 71.0, 74.0 %; its other runs
        // 77.6-95.9 %) and the session's highest in all four (93.3-96.6 %); a 5 s warm-up before
        // it did not make it like the others (session at info: 73.2 % against 77.6-86.7 %).
        await Promise.all([t.proc?.restart(), b.proc?.restart()])
        await sideBySideLoad(t, b, SIDE_WARMUP_SECONDS)
        await sideWatch.cut()
        const cpu0 = [cpuMs(t.proc?.pid), cpuMs(b.proc?.pid)]
        const [x, y] = await sideBySideLoad(t, b, SECONDS)
        const cpu1 = [cpuMs(t.proc?.pid), cpuMs(b.proc?.pid)]
        const per = (i: number, run: LoadRun): number | null => cpu0[i] === null || cpu1[i] === null || run.sent === 0 ? null : round(((cpu1[i] as number) - (cpu0[i] as number)) * 1000 / run.sent, 1)
        const row: SideBySideRound = { rps: Math.round(x.rps), base_rps: Math.round(y.rps), ratio: round(x.rps / y.rps, 3), cpu_us: per(0, x), base_cpu_us: per(1, y), p99_ms: x.p99, base_p99_ms: y.p99 }
        rounds.push(row)
        const bad = notOk(x, y)
        console.log(`  side by side ${r + 1}: ${t.name} ${row.rps} req/s (CPU ${row.cpu_us} µs/request) | ${b.name} ${row.base_rps} req/s (CPU ${row.base_cpu_us} µs/request) -> ${(row.ratio * 100).toFixed(1)} %${bad > 0 ? `, ${bad} not 2xx/errors` : ''}`)
        sent += x.sent
        if (key === 'session' && FIXED_RATE > 0) {
          const l = await latencySideBySide(t, b, r)
          latencyRuns.push(l)
          sent += l.sent
        }
        redisSeen.push(...await sideWatch.cut())
      }
      const { byPurpose, requestPath } = byPurposeOf(redisSeen)
      const cpuRatios = rounds.filter((r) => r.cpu_us !== null && r.base_cpu_us !== null).map((r) => (r.base_cpu_us as number) / (r.cpu_us as number))
      sideBySide.push({ key, base: baseKey, target: t.name, rounds, ratio: round(median(rounds.map((r) => r.ratio)), 3), cpu_ratio: cpuRatios.length === 0 ? null : round(median(cpuRatios), 3), requests: sent, redis_request_path_commands: requestPath, redis_request_path_per_request: sent > 0 ? round(requestPath / sent, 6) : null, redis_by_purpose: byPurpose })
    }

    sideWatch.close()
    if (latencyRuns.length > 0) {
      // The method's noise (see LatencySideBySide): a second bare proxy in the session target's
      // place, the same protocol (both afresh, warmed up, a saturated run, then the latency run).
      const session = targets.find((x) => x.key === 'session') as Target
      const b = targets.find((x) => x.key === 'bare') as Target
      const other = await restartableScript('benchmarks/bare-proxy.mjs', { UPSTREAM: upstream })
      const a: Target = { ...b, key: 'bare-2', name: 'a second bare @fastify/http-proxy', proc: other, load: { url: `http://127.0.0.1:${other.port}/page`, headers: session.load.headers } }
      const noise: LatencyRun[] = []
      for (let r = 0; r < latencyRuns.length; r++) {
        await Promise.all([a.proc?.restart(), b.proc?.restart()])
        for (const duration of [SIDE_WARMUP_SECONDS, SECONDS]) await sideBySideLoad(a, b, duration)
        noise.push(await latencySideBySide(a, b, r))
      }
      await other.kill()
      latencySide = {
        key: 'session',
        base: 'bare',
        rate: FIXED_RATE / 2,
        connections: FIXED_RATE_CONNECTIONS / 2,
        runs: latencyRuns,
        p99_over_bare_ms: round(median(latencyRuns.map((r) => r.p99_over_ms)), 2),
        noise: { runs: noise, p99_abs_ms: round(median(noise.map((r) => Math.abs(r.p99_over_ms))), 2) }
      }
    }
    result.load = { rounds: ROUNDS, side_by_side_runs: SIDE_RUNS, side_by_side_warmup_seconds: SIDE_WARMUP_SECONDS, seconds: SECONDS, warmup_seconds: WARMUP_SECONDS, connections: CONNECTIONS, idle_redis_commands_per_second: idleCommandsPerSecond, targets: summary, side_by_side: sideBySide, latency_side_by_side: latencySide }
    for (const p of procs) await p.kill()
  }

  // ---------------------------------------------------------------- decision
  let decision: DecisionResult | null = null
  if (PHASES.has('decision')) {
    console.log(`\n[decision] micro-benchmark, ${DECISION_RUNS} runs, each in a process of its own on CPU ${PROXY_CPU} (${elapsed()})`)
    const [cmd, ...args] = pin(PROXY_CPU, [process.execPath, '--expose-gc', '--import', 'tsx', 'benchmarks/decision.ts', '--json'])
    const runs: DecisionResult[] = []
    for (let i = 0; i < DECISION_RUNS; i++) runs.push(JSON.parse(execFileSync(cmd as string, args, { encoding: 'utf8', maxBuffer: 1 << 22 })) as DecisionResult)
    decision = combineRuns(runs)
    result.decision = decision
  }

  // ---------------------------------------------------------------- signin
  let signin: SignInResult | null = null
  if (PHASES.has('signin')) {
    console.log(`\n[signin] ${SIGNINS} sign-ins (+${SIGNIN_WARMUP} warm-up) through the embedded IdP (${elapsed()})`)
    const traceFile = join(mkdtempSync(join(tmpdir(), 'moatless-bench-trace-')), 'outgoing.jsonl')
    const m: MoatlessProcess = await startMoatless(config({ port: ports.signin, adminPort: admin.signin, prefix: 'bench-signin:' }), {
      port: ports.signin,
      adminPort: admin.signin,
      logs: 'info',
      nodeArgs: ['--import', './benchmarks/trace-outgoing.mjs', ...SIGNIN_NODE_ARGS],
      env: { BENCH_TRACE_FILE: traceFile, BENCH_TRACE_ORIGIN: new URL(idp.issuer).origin }
    })
    signin = await measureSignIn({ moatless: m, traceFile, idpIssuer: idp.issuer, idpCalls, from: fromOf('http', ports.signin), signins: SIGNINS, warmup: SIGNIN_WARMUP, user: 'alice', password: 'alice-password' })
    result.signin = signin
    await stopChild(m.child)
  }

  // ---------------------------------------------------------------- rss
  let rss: RssResult | null = null
  if (PHASES.has('rss')) {
    console.log(`\n[rss] sessions used through a fresh proxy with session.cache_size ${RSS_CACHE}: ${RSS_STAGES.join(' / ')} (${elapsed()})`)
    const rssConfig = config({ port: ports.rss, adminPort: admin.rss, prefix: 'bench-rss:' }).replace('\nsession:\n', `\nsession:\n  cache_size: ${RSS_CACHE}\n`)
    if (!rssConfig.includes(`cache_size: ${RSS_CACHE}`)) throw new Error('rss: could not set session.cache_size in the proxy config')
    const m = await startMoatless(rssConfig, { port: ports.rss, adminPort: admin.rss, nodeArgs: ['--expose-gc', '--import', './benchmarks/gc-on-signal.mjs'] })
    rss = await measureRss({ moatless: m, store: await storeFor('bench-rss:'), redis: rc, prefix: 'bench-rss:', from: fromOf('http', ports.rss), host: `wiki.localhost:${ports.rss}`, stages: RSS_STAGES, connections: CONNECTIONS, cacheSize: RSS_CACHE })
    result.rss = rss
    await stopChild(m.child)
  }

  // ---------------------------------------------------------------- report
  const targetsBlock = targetLines(summary, sideBySide, latencySide, decision, signin, rss)
  result.targets_met = targetsBlock.rows
  result.duration_s = Math.round((Date.now() - started) / 1000)
  const md = report(result, machine, summary, sideBySide, latencySide, idleCommandsPerSecond, decision, signin, rss, targetsBlock.text)
  writeFileSync('benchmarks/results/latest.json', JSON.stringify(result, null, 2) + '\n')
  writeFileSync('benchmarks/results/latest.md', md)
  console.log('\n' + md)

  for (const s of stores) await s.close()
  rc.disconnect()
  await idp.close()
  await redis.close()
  stopAll()
}

const fmtPct = (x: number | null): string => x === null ? 'not measured' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`

function tlsAgent (ca: string, cert?: { cert: string; key: string }): Agent {
  return new Agent({ connect: { ca, servername: 'wiki.localhost', ...(cert === undefined ? {} : { cert: cert.cert, key: cert.key }) } })
}

/**
 * One line of the Targets block. A `breakdown` row is not one of the issue's targets: it splits
 * a target's measurement (a half of the decision, the session lookup alone, every live session
 * in use as a memory-latency yardstick) and is printed with what it shows, not judged: its
 * `met` is null and `flat` says whether it stayed within the tolerance.
 */
interface TargetRow { target: string; measured: string; goal: string; met: boolean | null; inconclusive?: boolean; breakdown?: true; flat?: boolean | null }

/** A signed difference in ms: +0.5 ms, -0.2 ms. */
const ms = (x: number): string => `${x >= 0 ? '+' : ''}${x} ms`

/** The p99 target's row: met within the tolerance, inconclusive within the tolerance + the method's noise. */
function latencyRow (label: string, l: LatencySideBySide, other: string | null): TargetRow {
  const over = l.p99_over_bare_ms
  const noise = l.noise?.p99_abs_ms ?? 0
  const noiseText = l.noise === null ? '' : ` (method noise, bare against a second bare the same way: ${noise} ms in the median run; runs ${l.noise.runs.map((r) => ms(r.p99_over_ms)).join(', ')})`
  const met = over <= GOAL.p99OverBareMs
  return {
    target: label,
    measured: `side by side ${ms(over)} (runs: ${l.runs.map((r) => `${r.p99_ms} vs ${r.base_p99_ms}`).join(', ')} ms)${noiseText}${other === null ? '' : `; ${other}`}`,
    goal: `<= ${GOAL.p99OverBareMs} ms (side by side)`,
    met,
    inconclusive: !met && over <= GOAL.p99OverBareMs + noise
  }
}

/** ` (runs: 17.6 %, 9.1 %, 1.8 %)`: each decision run's own spread, when runs were combined. */
function runSpreads (f: { run_spreads?: number[] }): string {
  return f.run_spreads === undefined ? '' : ` (runs: ${f.run_spreads.map((x) => `${(x * 100).toFixed(1)} %`).join(', ')})`
}

function targetLines (summary: TargetSummary[], sideBySide: SideBySide[], latencySide: LatencySideBySide | null, decision: DecisionResult | null, signin: SignInResult | null, rss: RssResult | null): { rows: TargetRow[]; text: string } {
  const rows: TargetRow[] = []
  const s = summary.find((x) => x.key === 'session')
  const bare = summary.find((x) => x.key === 'bare')
  const sbs = sideBySide.find((x) => x.key === 'session')
  const interleaved = s === undefined || bare === undefined || s.vs_bare === null
    ? null
    : `interleaved rounds ${(s.vs_bare * 100).toFixed(1)} % (median of the rounds' ratios: ${s.vs_bare_same_transport_rounds.map((x) => `${(x * 100).toFixed(1)} %`).join(', ')}; medians ${s.rps} vs ${bare.rps} req/s)`
  rows.push(sbs === undefined
    ? { target: 'session: req/s vs bare proxy', measured: interleaved ?? 'not measured', goal: `>= ${GOAL.rpsVsBare * 100} % (side by side)`, met: null }
    : { target: 'session: req/s vs bare proxy', measured: `side by side ${(sbs.ratio * 100).toFixed(1)} % (runs: ${sbs.rounds.map((r) => `${(r.ratio * 100).toFixed(1)} %`).join(', ')}${sbs.cpu_ratio === null ? '' : `; by CPU per request ${(sbs.cpu_ratio * 100).toFixed(1)} %`})${interleaved === null ? '' : `; ${interleaved}`}`, goal: `>= ${GOAL.rpsVsBare * 100} % (side by side)`, met: sbs.ratio >= GOAL.rpsVsBare })
  const logged = sideBySide.find((x) => x.key === 'session-logged')
  if (logged !== undefined) rows.push({ target: 'session, every decision logged (info): req/s vs bare', measured: `side by side ${(logged.ratio * 100).toFixed(1)} % (runs: ${logged.rounds.map((r) => `${(r.ratio * 100).toFixed(1)} %`).join(', ')}${logged.cpu_ratio === null ? '' : `; by CPU per request ${(logged.cpu_ratio * 100).toFixed(1)} %`})`, goal: `>= ${GOAL.rpsVsBare * 100} % (side by side)`, met: logged.ratio >= GOAL.rpsVsBare })
  const sr = summary.find((x) => x.key === 'session@rate')
  const br = summary.find((x) => x.key === 'bare@rate')
  const interleavedP99 = (x: TargetSummary | undefined, b: TargetSummary | undefined): string | null =>
    x === undefined || b === undefined || x.p99_over_bare_same_transport_ms === null ? null : `interleaved rounds ${ms(x.p99_over_bare_same_transport_ms)} (medians ${x.p99_ms} vs ${b.p99_ms} ms)`
  {
    const label = `session: p99 over bare, at a fixed rate (side by side ${FIXED_RATE / 2} req/s each; interleaved ${FIXED_RATE})`
    const other = interleavedP99(sr, br)
    rows.push(latencySide === null
      ? { target: label, measured: other ?? 'not measured', goal: `<= ${GOAL.p99OverBareMs} ms (side by side)`, met: null }
      : latencyRow(label, latencySide, other))
  }
  // Saturated, p99 is queueing: about connections / req/s, so it follows the req/s ratio (at
  // 85 % of bare's req/s, ~18 % over bare's p99); reported below the targets, not judged.
  const saturatedP99 = sbs === undefined
    ? null
    : `  (info) session: p99 over bare, saturated (${CONNECTIONS} connections), side by side ${ms(round(median(sbs.rounds.map((r) => r.p99_ms - r.base_p99_ms)), 2))} (runs: ${sbs.rounds.map((r) => `${r.p99_ms} vs ${r.base_p99_ms}`).join(', ')} ms): queueing, which at ${(sbs.ratio * 100).toFixed(1)} % of bare's req/s adds ~${(100 / sbs.ratio - 100).toFixed(0)} % to a saturated p99${interleavedP99(s, bare) === null ? '' : `; ${interleavedP99(s, bare) as string}`}`
  const moat = summary.filter((x) => x.redis_request_path_per_request !== null)
  rows.push(moat.length === 0
    ? { target: 'Redis commands per request (steady state)', measured: 'not measured', goal: `< ${GOAL.redisPerRequest} on the request path`, met: null }
    : {
        target: 'Redis commands per request (steady state)',
        measured: moat.map((x) => `${x.key} ${requestPathText(x)} (all commands incl. timers: ${x.redis_commands_per_request})`).join('; ') +
          (sideBySide.length === 0 ? '' : `; side by side, after each warm-up: ${sideBySide.map((x) => `${x.key} ${requestPathText(x)}`).join(', ')}`),
        goal: `< ${GOAL.redisPerRequest} on the request path (interleaved rounds and side by side)`,
        // No side-by-side request counted (BENCH_SIDE_RUNS=0, runs that failed): not measured there, not met.
        met: moat.every((x) => (x.redis_request_path_per_request ?? 1) < GOAL.redisPerRequest) && sideBySide.every((x) => (x.redis_request_path_per_request ?? 1) < GOAL.redisPerRequest)
      })
  // The two targets (the whole decision, as the request path makes it), each with its breakdowns.
  const labels: Record<string, string> = {
    apps: 'decision flat, 10 -> 10,000 apps',
    'apps: lookupHost alone': '  of which lookupHost alone',
    'apps: evaluate alone': '  of which evaluate alone',
    'apps, each size compiled alone': '  the same, each size compiled alone (memory placement)',
    'request, 100 in use': 'decision flat, 100 -> 100,000 live sessions (100 in use; from the Cookie header)',
    'decision, 100 in use': '  the same from the session id on (no cookie cache)',
    'sessions, 100 in use': '  of which the session lookup alone',
    'request, all in use': '  every live session in use (memory latency; from the Cookie header)',
    'decision, all in use': '    the same from the session id on',
    'sessions, all in use': '    of which the session lookup alone'
  }
  const judged = new Set(['apps', 'request, 100 in use'])
  for (const fam of Object.keys(labels)) {
    const f = decision?.flatness.find((x) => x.family === fam)
    const largest = decision?.cases.filter((c) => c.family === fam).at(-1)
    const misses = f?.measures === 'memory latency' && largest?.extra_misses !== undefined ? `; at ${largest.size} the walk costs +${largest.extra_ns} ns over 100 in use = about ${largest.extra_misses} memory misses of ${decision?.cache_miss_ns} ns` : ''
    const target = labels[fam] as string
    const goal = judged.has(fam) ? `within ${GOAL.flat * 100} %` : 'breakdown, not judged'
    const measured = f === undefined ? 'not measured' : `${f.min_ns}..${f.max_ns} ns/op, spread ${(f.spread * 100).toFixed(1)} %${runSpreads(f)} (measurement noise ${(f.noise * 100).toFixed(1)} %)${misses}`
    if (!judged.has(fam)) rows.push({ target, measured, goal, met: null, breakdown: true, ...(f === undefined ? {} : { flat: f.flat }) })
    else rows.push(f === undefined ? { target, measured, goal, met: null } : { target, measured, goal, met: f.flat, inconclusive: f.flat === null })
  }
  rows.push(signin === null
    ? { target: 'sign-in server time (callback + handoff, IdP excluded)', measured: 'not measured', goal: `< ${GOAL.signinMs} ms (p50)`, met: null }
    : { target: 'sign-in server time (callback + handoff, IdP excluded)', measured: `p50 ${signin.moatless_ms.p50} ms, p95 ${signin.moatless_ms.p95} ms, max ${signin.moatless_ms.max} ms`, goal: `< ${GOAL.signinMs} ms (p50)`, met: signin.moatless_ms.p50 < GOAL.signinMs })
  const rssGoal = `<= +${GOAL.rssGrowth * 100} % from ${RSS_REFERENCE_FACTOR}x the configured session.cache_size to the last stage (after GC)`
  rows.push(rss === null || rss.growth_beyond_limit === null
    ? { target: 'RSS bounded by session.cache_size', measured: `not measured (needs a stage at ${RSS_REFERENCE_FACTOR}x the cache size or more, and a later one)`, goal: rssGoal, met: null }
    : (() => {
        const ref = rss.stages.find((x) => x.sessions === rss.reference_sessions)
        const last = rss.stages.at(-1)
        return { target: 'RSS bounded by session.cache_size', measured: `after GC ${ref?.after_gc.rss_mib} MiB at ${ref?.sessions} sessions -> ${last?.after_gc.rss_mib} MiB at ${last?.sessions} (${fmtPct(rss.growth_beyond_limit)}; heap used after GC ${fmtPct(rss.heap_growth_beyond_limit)}; as read without GC ${fmtPct(rss.growth_beyond_limit_raw)}); session.cache_size ${rss.cache_size}`, goal: rssGoal, met: rss.bounded }
      })())
  const info: string[] = saturatedP99 === null ? [] : [saturatedP99]
  if (latencySide !== null) {
    const noise = latencySide.noise === null ? '' : `; a second bare the same way: ${ms(round(median(latencySide.noise.runs.map((r) => r.paired_p50_ms)), 3))}`
    info.push(`  (info) session: latency over bare per request at ${latencySide.rate} req/s each, median of the paired differences: ${ms(round(median(latencySide.runs.map((r) => r.paired_p50_ms)), 3))} (runs: ${latencySide.runs.map((r) => ms(r.paired_p50_ms)).join(', ')})${noise}`)
  }
  for (const k of ['bearer', 'device']) {
    const x = summary.find((y) => y.key === k)
    const side = sideBySide.find((y) => y.key === k)
    if (side !== undefined) info.push(`  (info) ${side.target}: side by side ${(side.ratio * 100).toFixed(1)} % of ${side.base} (runs: ${side.rounds.map((r) => `${(r.ratio * 100).toFixed(1)} %`).join(', ')})`)
    if (x !== undefined && x.vs_bare_same_transport !== null) info.push(`  (info) ${x.target}: interleaved ${(x.vs_bare_same_transport * 100).toFixed(1)} % of bare ${x.transport === 'tls' ? 'over TLS' : ''} req/s (rounds: ${x.vs_bare_same_transport_rounds.map((r) => `${(r * 100).toFixed(1)} %`).join(', ')})${x.cpu_capacity_vs_bare === null ? '' : `, ${(x.cpu_capacity_vs_bare * 100).toFixed(1)} % by CPU time per request`}, p99 ${(x.p99_over_bare_same_transport_ms ?? 0) >= 0 ? '+' : ''}${x.p99_over_bare_same_transport_ms} ms over it`.replace('bare  req', 'bare req'))
  }
  const w = Math.max(...rows.map((r) => r.target.length))
  const text = [
    'Targets',
    ...rows.map((r) => `  ${r.target.padEnd(w)}  ${r.measured}  ${r.breakdown === true ? `[${r.goal}]  ${breakdownShows(r.flat)}` : `[goal ${r.goal}]  ${r.inconclusive === true ? 'INCONCLUSIVE (noise)' : r.met === null ? 'NOT MEASURED' : r.met ? 'met' : 'NOT MET'}`}`),
    ...info
  ].join('\n')
  return { rows, text }
}

/** What a breakdown row's spread shows, against the flatness tolerance (lower case: not a verdict). */
function breakdownShows (flat: boolean | null | undefined): string {
  if (flat === undefined) return 'not measured'
  return flat === null ? `within ${GOAL.flat * 100} % plus noise` : flat ? `within ${GOAL.flat * 100} %` : `over ${GOAL.flat * 100} %`
}

function report (result: Record<string, unknown>, machine: { cpu: string; cores: number; memory_gib: number; node: string }, summary: TargetSummary[], sideBySide: SideBySide[], latencySide: LatencySideBySide | null, idleRate: number | null, decision: DecisionResult | null, signin: SignInResult | null, rss: RssResult | null, targets: string): string {
  const out: string[] = [`Measured ${result.date as string} on ${machine.cpu} (${machine.cores} cores, ${machine.memory_gib} GiB), Node ${machine.node}${hasTaskset ? '; proxies pinned to CPU 0; upstream, load generator, IdP and Redis to CPU 1' : ''}; whole run ${result.duration_s as number} s.`, '']
  if (summary.length > 0) {
    out.push(`Load: ${ROUNDS} interleaved rounds of ${SECONDS} s per target (every other round in reverse order) after a ${WARMUP_SECONDS} s warm-up, ${CONNECTIONS} connections as fast as they go (fixed-rate rows: ${FIXED_RATE} req/s in total sent at even intervals whatever the answers, over ${FIXED_RATE_CONNECTIONS} connections, after an unrecorded second, compared with bare at the same rate), 1 KiB responses; latency from every 2xx response. req/s, p50, p99 and CPU: medians of the rounds. Ratios and "p99 over bare": taken within each round, then the median of the rounds (so drift between rounds cancels). CPU µs/request: the proxy process's user + system time over the run / its requests (/proc); "by CPU" = bare's CPU per request / the target's: requests per CPU-second relative to bare.`, '',
      '| target | req/s | p50 ms | p99 ms | vs bare (same transport) | rounds | vs bare (HTTP) | vs direct | p99 over bare (same transport) | proxy CPU µs / request | vs bare by CPU | Redis cmds / request |',
      '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|',
      ...summary.map((r) => `| ${r.target} | ${r.rps} | ${r.p50_ms} | ${r.p99_ms} | ${r.vs_bare_same_transport ?? '-'} | ${r.vs_bare_same_transport_rounds.join(', ') || '-'} | ${r.vs_bare ?? '-'} | ${r.vs_direct ?? '-'} | ${r.p99_over_bare_same_transport_ms === null ? '-' : `${r.p99_over_bare_same_transport_ms} ms`} | ${r.cpu_us_per_request ?? '-'} | ${r.cpu_capacity_vs_bare ?? '-'} | ${r.redis_commands_per_request ?? '-'} |`),
      '')
    if (sideBySide.length > 0) {
      out.push(`Side by side: each Moatless target loaded at the same time as its bare baseline (${CONNECTIONS} connections each, ${SIDE_RUNS} runs of ${SECONDS} s, for each run both proxies started afresh and warmed up together for ${SIDE_WARMUP_SECONDS} s), both proxies pinned to the same CPU, so the scheduler gives each half of it and whatever the machine does hits both at the same instant. Both are sent the same requests: the Moatless target's headers (Host, the session cookie or bearer token, Accept), which bare forwards as they are. The req/s ratio is then bare's cost per request / Moatless's: the share of bare's throughput Moatless keeps. Median of the runs.`, '',
        '| target | vs | runs: req/s (target / baseline) | ratio per run | ratio (median) | CPU µs / request per run (target / baseline) | by CPU (median) |', '|---|---|---|---|---:|---|---:|',
        ...sideBySide.map((x) => `| ${x.target} | ${x.base} | ${x.rounds.map((r) => `${r.rps} / ${r.base_rps}`).join(', ')} | ${x.rounds.map((r) => `${(r.ratio * 100).toFixed(1)} %`).join(', ')} | **${(x.ratio * 100).toFixed(1)} %** | ${x.rounds.map((r) => `${r.cpu_us ?? '-'} / ${r.base_cpu_us ?? '-'}`).join(', ')} | ${x.cpu_ratio === null ? '-' : `${(x.cpu_ratio * 100).toFixed(1)} %`} |`), '')
    }
    if (latencySide !== null) {
      out.push(`Latency side by side: the session target and bare offered ${latencySide.rate} req/s each at the same time (the load of one fixed-rate run in total, sent at even intervals; ${latencySide.connections} connections each, ${latencySide.runs.length} runs of ${LATENCY_SECONDS} s, each right after a session side-by-side run, on the same fresh and warm pair of processes), same CPU, same requests, sent to both at the same instants by one load process. Neither is saturated, so a stall of the machine lands in both tails at once and the p99 difference is the latency Moatless adds. Median of the runs' differences: **${ms(latencySide.p99_over_bare_ms)}**.`, '',
        '| run | requests (target / bare) | p50 ms (target / bare) | p99 ms (target / bare) | p99 over bare | per request over bare (median) |', '|---:|---|---|---|---:|---:|',
        ...latencySide.runs.map((r, i) => `| ${i + 1} | ${r.requests} / ${r.base_requests} | ${r.p50_ms} / ${r.base_p50_ms} | ${r.p99_ms} / ${r.base_p99_ms} | ${ms(r.p99_over_ms)} | ${ms(r.paired_p50_ms)} |`), '',
        '"Per request over bare": each request went to both at the same instant; the target\'s latency minus bare\'s for that request, the median over the run: what Moatless adds to a typical request, where the p99s compare tails that are mostly stalls both share.', '')
      const noise = latencySide.noise
      if (noise !== null) {
        out.push(`The method's noise: the same runs with a second bare proxy in the session target's place (both afresh, warmed up, a saturated run, then the latency run). Two identical proxies came out **${noise.p99_abs_ms} ms** apart in the median run; the p99 target counts as inconclusive, not missed, while the difference above is within ${GOAL.p99OverBareMs} ms plus this.`, '',
          '| run | requests (bare 2 / bare) | p50 ms (bare 2 / bare) | p99 ms (bare 2 / bare) | difference | per request (median) |', '|---:|---|---|---|---:|---:|',
          ...noise.runs.map((r, i) => `| ${i + 1} | ${r.requests} / ${r.base_requests} | ${r.p50_ms} / ${r.base_p50_ms} | ${r.p99_ms} / ${r.base_p99_ms} | ${ms(r.p99_over_ms)} | ${ms(r.paired_p50_ms)} |`), '')
      }
    }
    const bad = summary.filter((r) => r.not_2xx > 0)
    if (bad.length > 0) out.push(`Not 2xx / errors: ${bad.map((r) => `${r.target} ${r.not_2xx}`).join(', ')}`, '')
    out.push(`Redis, steady state (after warm-up). "Redis cmds / request" above: INFO commandstats delta over the target's runs / its requests (every command any client sent, timers included). While only non-Moatless targets ran: ${idleRate ?? '-'} commands/s in the background. MONITOR over the same runs, by what each command was for (timers: rule-set polling every 5 s per replica, decision-sample flush at most 1/s):`, '',
      '| target | requests | commands by purpose (MONITOR) | timer commands/s | request-path commands / request |', '|---|---:|---|---:|---:|',
      ...summary.filter((r) => r.redis_request_path_per_request !== null).map((r) => `| ${r.target} | ${r.requests} | ${purposesText(r.redis_by_purpose)} | ${r.redis_timer_commands_per_second} | ${r.redis_request_path_commands} / ${r.requests} = ${r.redis_request_path_per_request} |`),
      ...sideBySide.map((r) => `| ${r.target}, side by side (each run after its warm-up${r.key === 'session' && FIXED_RATE > 0 ? ', latency runs included' : ''}) | ${r.requests} | ${purposesText(r.redis_by_purpose)} | - | ${r.redis_request_path_commands} / ${r.requests} = ${r.redis_request_path_per_request ?? '-'} |`), '',
      'Purposes: get rule set = rule-set polling; xadd = decision-sample flush; get session / get device = a cached entry fetched again (the caches trust an entry for 60 s); set session (after a get) = the session activity touch (idle timeout), about once a minute per session. Whether a run sees these depends on whether it spans such a moment.', '')
  }
  if (decision !== null) {
    out.push(`Decision alone, from memory and synchronously as the request path runs it (${decision.runs ?? 1} run${(decision.runs ?? 1) === 1 ? '' : 's'}, each in a process of its own on the proxy CPU, so each with its own heap layout; per case the median of the runs' values; each run's value: the fastest of ${decision.reps} repetitions of about ${decision.target_ms ?? '?'} ms each, each repetition in a different order, median beside it; noise = how far a case's 25th-percentile repetition lies above its fastest). "100 in use": the same 100 sessions at every size (the data structures); "all in use": a random walk over every live session (at 100,000, ~50 MB: each request pays CPU cache and TLB misses; one memory miss here = a dependent random read over ${decision.chase_mib ?? '?'} MiB = ${decision.cache_miss_ns ?? '?'} ns).`, '',
      '| case | ns/op | median ns/op | over 100 in use |', '|---|---:|---:|---:|',
      ...decision.cases.map((c) => `| ${c.case} | ${c.ns_per_op} | ${c.median_ns} | ${c.extra_ns === undefined ? '' : `+${c.extra_ns} ns = ${c.extra_misses} misses`} |`), '',
      ...decision.flatness.map((f) => `- ${f.family}, sizes ${f.sizes.join(' / ')}: ${f.min_ns}..${f.max_ns} ns/op, spread ${(f.spread * 100).toFixed(1)} %${runSpreads(f)}, measurement noise ${(f.noise * 100).toFixed(1)} % -> ${f.verdict} (tolerance ${GOAL.flat * 100} %; inconclusive when the spread is within tolerance + noise)`), '')
  }
  if (signin !== null) {
    const st = (s: { p50: number; p95: number; max: number }): string => `${s.p50} | ${s.p95} | ${s.max}`
    out.push(`Sign-in (${signin.signins} real sign-ins after ${signin.warmup} warm-up). Server time = the proxy's decision-log duration. Waiting on the IdP = the proxy's outgoing requests to the IdP (${Object.entries(signin.idp_requests_by_proxy).map(([p, n]) => `${p} x${n}`).join(', ') || 'none'}), created -> response complete, traced inside the proxy process. IdP server time = the same requests inside the IdP's HTTP server (the rest of the wait is the loopback round trip and HTTP client work).`, '',
      '| ms | p50 | p95 | max |', '|---|---:|---:|---:|',
      `| callback, server time | ${st(signin.callback_server_ms)} |`,
      `| of which waiting on the IdP | ${st(signin.proxy_waiting_on_idp_ms)} |`,
      `| (IdP's own server time for those requests) | ${st(signin.idp_server_ms)} |`,
      `| handoff, server time | ${st(signin.handoff_server_ms)} |`,
      `| **sign-in: callback - waiting on IdP + handoff** | ${st(signin.moatless_ms)} |`,
      `| same, subtracting only the IdP's server time | ${st(signin.moatless_minus_idp_server_time_ms)} |`, '')
  }
  if (rss !== null) {
    const last = rss.stages.at(-1)
    out.push(`Memory against sessions: a fresh proxy with \`session.cache_size: ${rss.cache_size}\`, the entry limit of both its session cache (src/authn/sessions.ts) and its unsealed-cookie cache (src/authn/session-stage.ts); each session used once through it (one request with its own cookie, to a path the rules deny that user after finding the session: 403, nothing forwarded). Read 1 s after each stage, then again after a full GC in the proxy (--expose-gc, triggered by a signal).`, '',
      '| sessions used | RSS MiB | V8 heap used MiB | RSS after GC MiB | heap used after GC MiB | heap committed after GC MiB |', '|---:|---:|---:|---:|---:|---:|',
      `| baseline (1 session, warmed up) | ${rss.baseline.rss_mib} | ${rss.baseline.heap_used_mib} | ${rss.baseline.after_gc.rss_mib} | ${rss.baseline.after_gc.heap_used_mib} | ${rss.baseline.after_gc.heap_total_mib} |`,
      ...rss.stages.map((x) => `| ${x.sessions} | ${x.rss_mib} | ${x.heap_used_mib} | ${x.after_gc.rss_mib} | ${x.after_gc.heap_used_mib} | ${x.after_gc.heap_total_mib} |`), '',
      `Per cached session (after GC, ${rss.limit_sessions ?? '?'} sessions used against the baseline, divided by the limit ${rss.cache_size}): about ${rss.bytes_per_cached_session ?? '?'} bytes of RSS, ${rss.heap_bytes_per_cached_session ?? '?'} bytes of V8 heap. ` +
      `So the limit predicts baseline + ${rss.cache_size} x ${rss.bytes_per_cached_session ?? '?'} bytes = ${rss.predicted_rss_mib ?? '?'} MiB at any number of sessions; at ${last?.sessions ?? '?'} sessions RSS after GC is ${last?.after_gc.rss_mib ?? '?'} MiB (${fmtPct(rss.last_vs_predicted)}), where caches without a limit would need about ${rss.unbounded_rss_mib ?? '?'} MiB. ` +
      `Growth from ${rss.reference_sessions ?? '?'} sessions (the first stage with at least ${RSS_REFERENCE_FACTOR}x the limit; the first stage past the limit still includes the warm-up of eviction, the heap growing to where the GC settles) to the last stage: RSS ${fmtPct(rss.growth_beyond_limit_raw)} as read, ${fmtPct(rss.growth_beyond_limit)} after GC; heap used after GC ${fmtPct(rss.heap_growth_beyond_limit)}.${rss.stages.some((x) => x.not_found > 0) ? ` Requests not answered 403 (session not found?) per stage: ${rss.stages.map((x) => x.not_found).join(' / ')}.` : ''}`, '')
  }
  out.push('```', targets, '```', '')
  return out.join('\n')
}

await main()
process.exit(0)
