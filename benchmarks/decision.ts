/**
 * The decision alone, as a micro-benchmark (issue 6: "decision cost flat (within 10 %) from 10
 * to 10,000 apps and from 100 to 100,000 live sessions"). Everything runs from memory,
 * synchronously, the way the proxy's request path runs it when nothing has to wait on the store.
 *
 * Families (the JSON's `family`; a family is one thing measured at several sizes):
 *  - 'apps': host lookup + rule evaluation (`ruleset.lookupHost` + `evaluate`) against rule sets
 *    of 10 to 10,000 apps, requests for the same 10 apps (spread over the rule set) at every
 *    size. Data-structure scaling with the number of apps. The rule sets of all sizes are built
 *    side by side (`ruleSetBuilder`: app k of each size compiled in turn), as the sessions of all
 *    sizes are put in their caches interleaved (below), so that the 10 apps in use lie spread
 *    over the same stretch of heap at every size.
 *  - 'apps: lookupHost alone', 'apps: evaluate alone': the two halves of 'apps' timed apart
 *    (same rule sets, same hosts). Each half's own scaling; their sum can step where they do
 *    not, when the two working sets together outgrow the L1 data cache.
 *  - 'apps, each size compiled alone': the same, each rule set compiled on its own by
 *    `compileRuleSet`, as a proxy compiles its config. Informational ('memory placement'): a
 *    small rule set then lies packed in a few pages, a large one's apps lie spread (compiling
 *    thousands of apps runs scavenges, which copy the survivors in the order the collector
 *    finds them, not app by app), so its small sizes come out cheaper by where their objects
 *    lie, not by how the lookup scales (benchmarks/NOTES-hot-path.md, fourth round).
 *  - 'sessions, 100 in use': `sessions.cached(id)` (the synchronous cache hit that
 *    src/authn/session-stage.ts makes on every signed-in request; `lookup` and the store are
 *    only for a miss) with 100 to 100,000 sessions live in the cache, requests from the same
 *    100 sessions spread across the cache at every size. THE data-structure measure for
 *    sessions: does a lookup cost more because more sessions are live? Its working set stays in
 *    the CPU caches at every size, so what changes is the data structure, including its
 *    footprint (in a bigger hash table the same 100 entries lie on more lines and pages).
 *    Note: `cached` reads the clock (Date.now) on every call, a fixed part of its cost.
 *  - 'sessions, all in use': the same lookup, requests walking all n sessions in random order.
 *    At 100,000 sessions that is a random walk over ~50 MB of heap: each request then pays
 *    several cache (and TLB) misses whatever the data structure, so this family measures the
 *    machine's memory latency, not how the code scales. It is kept to show what a replica whose
 *    100,000 users are all active pays; `cache_miss_ns` (below) is the yardstick, and each of its
 *    cases carries `extra_ns` / `extra_misses`: its cost above the same lookup with 100 in use,
 *    in ns and in memory misses. Its verdict is not a verdict on the code.
 *  - 'decision, 100 in use': the whole per-request decision from memory, as the issue words
 *    "decision cost": `sessions.cached(id)` -> its identity -> `ruleset.lookupHost(host)` ->
 *    `evaluate(app, { identity, device: NO_DEVICE, method, path, sourceIp })` with a 10-app rule
 *    set (requests for its 10 hosts in turn), at each session count, the same 100 sessions in
 *    use at every size. The headline scaling measure for sessions (data structures, working set
 *    in the CPU caches): the issue's "decision cost flat from 100 to 100,000 live sessions".
 *  - 'decision, all in use': the same, walking all n sessions in random order (memory latency,
 *    as for 'sessions, all in use'; with `extra_ns` / `extra_misses`).
 *  - 'request, 100 in use': the decision as a signed-in request gets it, from its Cookie header:
 *    `cookieValues` cuts the session cookie out -> `CookieSessions.cached` (the session stage's
 *    cache of unsealed cookies, each holding the session cache's entry for it, so no lookup by
 *    session id) -> its identity -> `lookupHost` -> `evaluate`, the same 100 sessions in use at
 *    every size. THE measure of the issue's "decision cost flat from 100 to 100,000 live
 *    sessions": the cookie cache grows with the sessions too, and the 'decision' families,
 *    which start from the session id, leave it out. Each header is a fresh copy made just
 *    before the repetitions (a request's header is a fresh string at every size alike).
 *  - 'request, all in use': the same, walking all n sessions' headers (memory latency).
 *  - 'other': no flatness. Unsealing a session cookie (for scale: the proxy caches the result
 *    per cookie value), and the memory-miss yardstick below (size = its buffer in MiB).
 * Every case asserts its answer on every iteration (allowed, session 'ok'): a case that did
 * something else would throw, because then the benchmark is wrong.
 *
 * cache_miss_ns: a dependent chain of random reads over a 64 MiB buffer (pointer chasing through
 * one random cycle over its 64-byte lines, so every step waits for the one before and touches a
 * new line and, mostly, a new page), ns per step. It is timed as a case of its own, in the
 * same process and the same shuffled repetitions as the others (fastest repetition). What a read that misses the CPU's private caches and the TLB costs on this machine, at a
 * working set of the size the 100,000-session walk has. (A VM may report a huge shared L3; then
 * both this and the walk are mostly L3 + TLB misses rather than DRAM: the same kind of miss
 * either way, which is what the comparison needs.) DECISION_CHASE_MIB changes the buffer size.
 * So "all in use at 100,000 costs about K memory misses" is K = extra_misses of that case.
 *
 * Method: every size is built first and stays alive (the sessions of all sizes are put in
 * their caches interleaved, so that at every size the entries lie spread over the same stretch
 * of heap, not packed together at the small sizes); one warm-up pass runs every case (so no
 * size pays for JIT compilation alone); each case then gets an iteration count that makes one
 * repetition take about DECISION_TARGET_MS (so timer resolution, the loop's own start and a
 * stray interrupt weigh little); a full GC is forced (global.gc when node runs with
 * --expose-gc, else the V8 flag set at run time; `gc` in the JSON says which) so that the
 * garbage from building the sizes is not collected inside a timed loop, and, after a 0.3 s pause,
 * one pass of every case runs unrecorded (the first pass after that GC was several times
 * slower); then REPS repetitions
 * time every case, in a different order each time (so no case always follows the same one). The
 * "all in use" walks go on where the last repetition stopped, so no repetition re-reads lines
 * the previous one left in the caches. Each case reports the fastest of its repetitions (other
 * work on the machine only ever adds time, so the minimum is the least noisy estimate of the
 * code's own cost) and the median beside it. A family is "flat" when its slowest size is within
 * 10 % of its fastest (max / min <= 1.10). How far to trust that: noise = how far a case's
 * 25th-percentile repetition lies above its fastest (worst case of the family). A spread above
 * 10 % but within 10 % + noise is reported as inconclusive rather than as not flat; on a quiet
 * machine the noise is a few per cent.
 *
 *   npm run bench:decision            prints a table
 *   tsx benchmarks/decision.ts --json prints one JSON document (used by run.ts)
 * Env: DECISION_REPS (default 80), DECISION_TARGET_MS (default 6: time of one repetition of one
 * case), DECISION_BUDGET_S (default 10: no new repetition starts after this many seconds of
 * repetitions; `reps` in the JSON is the number done), DECISION_CHASE_MIB (default 64).
 * Cached sessions are trusted for 60 s (CACHE_TTL_MS): repetitions also stop 50 s after the
 * cache was filled, so that every lookup stays a hit.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { compileRuleSet, evaluate, ruleSetBuilder } from '../src/authz/index.js'
import type { CompiledApp, CompileResult, RuleSet } from '../src/authz/index.js'
import { Sessions } from '../src/authn/sessions.js'
import { CookieSessions } from '../src/authn/session-stage.js'
import { cookieNames, cookieValues } from '../src/authn/cookies.js'
import { Sealer } from '../src/authn/seal.js'
import { App, type AppConfig } from '../src/config/schema.js'
import { NO_DEVICE, type Identity } from '../src/context.js'
import { MemoryStore } from '../src/store/index.js'
import { addExtraCost, FLAT_TOLERANCE, flatnessOf, median, type DecisionCase, type DecisionResult, type Family } from './decision-result.js'

export const APP_SIZES = [10, 100, 1000, 10_000]
export const SESSION_SIZES = [100, 10_000, 100_000]

/** app-00042: the same length at every size, so a bigger rule set does not mean longer host names. */
const appName = (i: number): string => `app-${String(i).padStart(5, '0')}`

function appConfig (i: number): AppConfig {
  return App.parse({
    name: appName(i),
    from: `https://${appName(i)}.example.com`,
    to: 'http://127.0.0.1:9000',
    public_paths: ['/static/**'],
    rules: [
      { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
      { name: 'engineers', allow: { groups: ['engineering'], methods: ['GET', 'POST'] } },
      { name: 'staff-read', allow: { domains: ['example.com'], methods: ['GET', 'HEAD'] } }
    ]
  })
}

function built (result: CompileResult): RuleSet {
  if (!result.ok) throw new Error('compile failed')
  return result.ruleset
}

/** A rule set of n apps, compiled alone (as a proxy compiles its config). */
function compiled (n: number): RuleSet {
  return built(compileRuleSet(Array.from({ length: n }, (_, i) => appConfig(i)), []))
}

/**
 * Rule sets of every size in `sizes`, built side by side: app k of each size is compiled in
 * turn, spread evenly over the largest size's apps (as the session caches are filled below), so
 * that at every size the apps lie spread over the same stretch of heap.
 */
function compiledSideBySide (sizes: readonly number[]): Map<number, RuleSet> {
  const most = Math.max(...sizes)
  const builders = sizes.map((n) => ({ n, builder: ruleSetBuilder([]) }))
  for (let i = 0; i < most; i++) {
    for (const { n, builder } of builders) {
      const k = Math.floor((i * n) / most)
      if (Math.floor(((i + 1) * n) / most) > k) builder.add(appConfig(k))
    }
  }
  return new Map(builders.map(({ n, builder }) => [n, built(builder.build())]))
}

const envNumber = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? fallback)
  return Number.isFinite(v) && v > 0 ? v : fallback
}

/** A repeatable pseudo-random sequence (the same orders and walks every run). */
function lcg (seed: number): () => number {
  return () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000 }
}
function shuffled<T> (xs: readonly T[], random: () => number): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [out[i], out[j]] = [out[j] as T, out[i] as T] }
  return out
}

/** A full GC, from --expose-gc or else by setting the V8 flag now (a fresh context then has `gc`). */
function gcFunction (): { gc: (() => void) | null; how: NonNullable<DecisionResult['gc']> } {
  const exposed = (globalThis as { gc?: unknown }).gc
  if (typeof exposed === 'function') return { gc: exposed as () => void, how: 'global.gc' }
  try {
    setFlagsFromString('--expose-gc')
    const fn: unknown = runInNewContext('gc')
    if (typeof fn === 'function') return { gc: fn as () => void, how: 'v8 flag' }
  } catch { /* not available: run without */ }
  return { gc: null, how: 'none' }
}

/**
 * A dependent random read chain: a Uint32Array over `mib` MiB holding one random cycle
 * (Sattolo) through all its 64-byte lines; each step reads the next line's index from the
 * current one, so no two reads overlap and no prefetcher can guess the next. run(steps) goes on
 * where the last run stopped and returns ns per step.
 */
export function pointerChase (mib = 64): (steps: number) => number {
  const LINE = 16 // Uint32 per 64-byte line
  const lines = Math.floor((mib * 1024 * 1024) / 64)
  const buf = new Uint32Array(lines * LINE)
  const order = new Uint32Array(lines)
  for (let i = 0; i < lines; i++) order[i] = i
  const random = lcg(424242)
  for (let i = lines - 1; i > 0; i--) { // Sattolo: one cycle through every line
    const j = Math.floor(random() * i)
    const t = order[i] as number; order[i] = order[j] as number; order[j] = t
  }
  for (let i = 0; i < lines; i++) buf[(order[i] as number) * LINE] = (order[(i + 1) % lines] as number) * LINE
  let p = 0
  return (steps) => {
    let q = p
    const start = process.hrtime.bigint()
    for (let i = 0; i < steps; i++) q = buf[q] as number
    const ns = Number(process.hrtime.bigint() - start) / steps
    p = q // keeps the chain live, and the next run starts where this one stopped
    return ns
  }
}

interface Runner { name: string; family: Family; size: number; iterations: number; run: (iterations: number) => number }

/**
 * A runner around `loop`, a function of its own (no indirect call per iteration) that returns
 * how many iterations came out as they should: anything less than all of them means the
 * benchmark is wrong (`wrong` says what did not happen).
 */
function counted (name: string, family: Family, size: number, loop: (iterations: number) => number, wrong: string): Runner {
  return {
    name,
    family,
    size,
    iterations: 0,
    run: (iterations) => {
      const start = process.hrtime.bigint()
      const done = loop(iterations)
      const ns = Number(process.hrtime.bigint() - start) / iterations
      if (done !== iterations) throw new Error(`${wrong}: benchmark is wrong`)
      return ns
    }
  }
}

export async function decisionMicrobench (reps = envNumber('DECISION_REPS', 80)): Promise<DecisionResult> {
  const t0 = process.hrtime.bigint()
  const seconds = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e9
  const targetMs = envNumber('DECISION_TARGET_MS', 6)
  const budgetS = envNumber('DECISION_BUDGET_S', 10)
  const chaseMib = envNumber('DECISION_CHASE_MIB', 64)
  const identity: Identity = Object.freeze({ sub: 'u', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: {}, via: 'session' })
  const runners: Runner[] = []

  // The same request mix at every size: 10 apps in use, spread over the whole rule set, so
  // only the number of configured apps changes (not how many different hosts are asked for).
  const decide = (family: Family, n: number, rs: RuleSet, how: string): Runner => {
    const hosts = Array.from({ length: 64 }, (_, i) => `${appName(Math.floor(((i % 10) * n) / 10))}.example.com`)
    return {
      name: `decide (lookupHost + evaluate), ${n} apps${how}`,
      family,
      size: n,
      iterations: 0,
      run: (iterations) => {
        let allowed = 0
        const start = process.hrtime.bigint()
        for (let i = 0; i < iterations; i++) {
          const app = rs.lookupHost(hosts[i & 63] as string)
          if (app !== undefined && evaluate(app, { identity, device: NO_DEVICE, method: 'GET', path: '/docs/page', sourceIp: '10.0.0.1' }).decision === 'allow') allowed++
        }
        const ns = Number(process.hrtime.bigint() - start) / iterations
        if (allowed !== iterations) throw new Error('not everything allowed: benchmark is wrong')
        return ns
      }
    }
  }
  // The two halves of 'apps' timed apart: each scales on its own; together, at 10 apps the
  // host table (7 cache lines) and the rules of the 10 apps in use fit in the L1 data cache.
  const halves = (n: number, rs: RuleSet): Runner[] => {
    const hosts = Array.from({ length: 64 }, (_, i) => `${appName(Math.floor(((i % 10) * n) / 10))}.example.com`)
    const apps = hosts.map((h) => rs.lookupHost(h))
    if (apps.some((a) => a === undefined)) throw new Error('a host is not found: benchmark is wrong')
    const half = (what: string, family: Family, loop: (iterations: number) => number): Runner =>
      counted(`${what} alone, ${n} apps`, family, n, loop, 'not every host found / request allowed')
    return [
      half('lookupHost', 'apps: lookupHost alone', (iterations) => {
        let found = 0
        for (let i = 0; i < iterations; i++) if (rs.lookupHost(hosts[i & 63] as string) !== undefined) found++
        return found
      }),
      half('evaluate', 'apps: evaluate alone', (iterations) => {
        let allowed = 0
        for (let i = 0; i < iterations; i++) if (evaluate(apps[i & 63] as CompiledApp, { identity, device: NO_DEVICE, method: 'GET', path: '/docs/page', sourceIp: '10.0.0.1' }).decision === 'allow') allowed++
        return allowed
      })
    ]
  }
  for (const [n, rs] of compiledSideBySide(APP_SIZES)) runners.push(decide('apps', n, rs, ''), ...halves(n, rs))
  for (const n of APP_SIZES) runners.push(decide('apps, each size compiled alone', n, compiled(n), ', compiled alone'))

  const sealer = new Sealer('bench-session-secret-0123456789abcdef-0123456789', 'cookie')
  const cookie = sealer.seal({ s: 'x'.repeat(43), o: 'https://wiki.example.com' })
  runners.push({
    name: 'unseal session cookie (AES-256-GCM; Moatless caches the result per cookie value)',
    family: 'other',
    size: 1,
    iterations: 0,
    run: (iterations) => {
      const start = process.hrtime.bigint()
      for (let i = 0; i < iterations; i++) if (sealer.unseal(cookie) === null) throw new Error('unseal failed')
      return Number(process.hrtime.bigint() - start) / iterations
    }
  })

  // The rule set of the whole-decision cases: 10 apps, requests for all 10 in turn.
  const rs10 = compiled(10)
  const hosts10 = Array.from({ length: 10 }, (_, i) => `${appName(i)}.example.com`)

  // What a browser sends: its session cookie for the app's origin among others, in a Cookie
  // header (each session its own header; the session stage slices the value out of it).
  const origin = 'https://app-00000.example.com'
  const cookieName = cookieNames(true).session
  const headerFor = (id: string): string => `theme=dark; ${cookieName}=${sealer.seal({ s: id, o: origin })}; lang=en`
  const stores: MemoryStore[] = []
  const built: { n: number; sessions: Sessions; ids: string[]; cookies: CookieSessions; headers: string[] }[] = []
  for (const n of SESSION_SIZES) {
    const store = new MemoryStore()
    stores.push(store)
    // A cache big enough for every size measured: this measures lookup cost, not evictions.
    const sessions = new Sessions(store, { lifetimeMs: 3_600_000, idleMs: 3_600_000, outageGraceMs: 30_000 }, 200_000)
    const ids: string[] = []
    for (let i = 0; i < n; i++) {
      // Into the store only: `create` would cache each session as it is made, a size's all
      // together (see below).
      const record = sessions.prepare({ sub: `u${i}`, email: `u${i}@example.com`, email_verified: true, groups: ['engineering'], claims: {}, tokens: '' })
      await store.putSession(record, 3_600_000)
      ids.push(record.id)
    }
    built.push({ n, sessions, ids, cookies: new CookieSessions(sessions, sealer, 200_000), headers: ids.map(headerFor) })
  }
  // Into the caches only now (a cached session is trusted for 60 s, and the repetitions must end
  // within that), and all sizes interleaved: what a lookup reads (the cache entry, the identity)
  // is allocated here, so every size's sessions end up spread over the same stretch of heap.
  // Otherwise the 100 sessions of the smallest size would sit packed in a few pages while the
  // 100 in use at 100,000 are scattered, and "100 in use" would measure that (TLB and L1
  // misses), not the size of the data structures.
  const most = Math.max(...built.map((b) => b.n))
  for (let i = 0; i < most; i++) {
    for (const { n, sessions, ids, cookies, headers } of built) {
      const k = Math.floor((i * n) / most)
      if (Math.floor(((i + 1) * n) / most) > k) {
        await sessions.lookup(ids[k] as string)
        // As the session stage meets it first: unsealed, and the cache entry found for it kept.
        if (cookies.cached(cookieValues(headers[k], cookieName)[0] as string, origin)?.status !== 'ok') throw new Error('a cookie does not name its session: benchmark is wrong')
      }
    }
  }
  for (const { sessions, ids } of built) for (const id of ids) if (sessions.cached(id) === undefined) throw new Error('a session is not cached: benchmark is wrong')
  // A request for one of the 10 apps (h) by `identity`, allowed? The rest of every whole decision.
  const allowed10 = (identity: Identity, h: number): boolean => {
    const app = rs10.lookupHost(hosts10[h] as string)
    return app !== undefined && evaluate(app, { identity, device: NO_DEVICE, method: 'GET', path: '/docs/page', sourceIp: '10.0.0.1' }).decision === 'allow'
  }
  const wholeDecision = (name: string, family: Family, size: number, loop: (iterations: number) => number): Runner =>
    counted(name, family, size, loop, 'not everything allowed')
  const filledAt = process.hrtime.bigint()

  const walk = lcg(777)
  for (const { n, sessions, ids, cookies, headers } of built) {
    // 100 sessions spread over the whole cache (not the 100 newest), and all n of them, each
    // in random order (no walk through neighbouring entries).
    const hotAt = shuffled(Array.from({ length: 100 }, (_, i) => Math.floor((i * n) / 100)), walk)
    const allAt = shuffled(Array.from({ length: n }, (_, i) => i), walk)
    const hot = hotAt.map((k) => ids[k] as string)
    const all = allAt.map((k) => ids[k] as string)
    const pools: ['100 in use' | 'all in use', string[]][] = [['100 in use', hot], ['all in use', all]]
    for (const [use, pool] of pools) {
      const m = pool.length
      let j = 0 // where the walk goes on next repetition
      runners.push({
        name: `sessions.cached, ${n} live sessions, ${use}`,
        family: `sessions, ${use}`,
        size: n,
        iterations: 0,
        run: (iterations) => {
          let ok = 0
          const start = process.hrtime.bigint()
          for (let i = 0; i < iterations; i++) {
            if (sessions.cached(pool[j] as string)?.status === 'ok') ok++
            if (++j === m) j = 0
          }
          const ns = Number(process.hrtime.bigint() - start) / iterations
          if (ok !== iterations) throw new Error('sessions.cached did not answer ok from the cache: benchmark is wrong')
          return ns
        }
      })
    }
    for (const [use, pool] of pools) {
      const m = pool.length
      let j = 0
      let h = 0
      runners.push(wholeDecision(`decision (cached session + lookupHost + evaluate, 10 apps), ${n} live sessions, ${use}`, `decision, ${use}`, n, (iterations) => {
        let allowed = 0
        for (let i = 0; i < iterations; i++) {
          const found = sessions.cached(pool[j] as string)
          if (found === undefined || found.status !== 'ok') throw new Error('sessions.cached did not answer ok from the cache: benchmark is wrong')
          if (allowed10(found.identity, h)) allowed++
          if (++j === m) j = 0
          if (++h === 10) h = 0
        }
        return allowed
      }))
    }
    // Each header a copy of its own, made now, in the order it is sent: a request's Cookie
    // header is a fresh string, just written by the HTTP parser, at every size alike (the
    // headers made when the sessions were, a size's all together, lie packed at 100 sessions
    // and spread over 20 MB at 100,000).
    const fresh = (k: number): string => Buffer.from(headers[k] as string, 'latin1').toString('latin1')
    const headerPools: ['100 in use' | 'all in use', string[]][] = [['100 in use', hotAt.map(fresh)], ['all in use', allAt.map(fresh)]]
    for (const [use, pool] of headerPools) {
      const m = pool.length
      let j = 0
      let h = 0
      runners.push(wholeDecision(`request (Cookie header -> cookie cache -> session + lookupHost + evaluate, 10 apps), ${n} live sessions, ${use}`, `request, ${use}`, n, (iterations) => {
        let allowed = 0
        for (let i = 0; i < iterations; i++) {
          // As src/authn/session-stage.ts does it: the first cookie value that is ours settles it.
          const values = cookieValues(pool[j], cookieName)
          let found = null
          for (let v = 0; v < values.length && found === null; v++) found = cookies.cached(values[v] as string, origin)
          if (found === null || found === undefined || found.status !== 'ok') throw new Error('the cookie was not answered ok from memory: benchmark is wrong')
          if (allowed10(found.identity, h)) allowed++
          if (++j === m) j = 0
          if (++h === 10) h = 0
        }
        return allowed
      }))
    }
  }

  // The yardstick for the "all in use" cases, timed alongside them (same conditions, same method).
  const chase: Runner = { name: `memory miss: dependent random read over ${chaseMib} MiB (ns per read)`, family: 'other', size: chaseMib, iterations: 0, run: pointerChase(chaseMib) }
  runners.push(chase)

  // Warm-up (JIT) for every case, then an iteration count per case for ~targetMs a repetition.
  for (const r of runners) r.run(r.family === 'other' ? 5_000 : 30_000)
  for (const r of runners) {
    let n = 1_000
    let ms = 0
    for (;;) {
      ms = (r.run(n) * n) / 1e6
      if (ms >= targetMs / 4 || n >= 1 << 24) break
      n *= 4
    }
    r.iterations = Math.max(1_000, Math.round((n * targetMs) / Math.max(ms, 1e-3)))
  }

  const { gc, how } = gcFunction()
  gc?.()
  // Then a pause and one pass not recorded: right after the forced GC, cases ran several times
  // slower once (the collector's sweeping still going on, on a 2-core machine), then never again.
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (const r of runners) r.run(r.iterations)
  const samples = new Map<Runner, number[]>(runners.map((r) => [r, []]))
  // A different order every repetition (fixed seed): no case always runs right after the same one.
  const random = lcg(12345)
  const repsStart = process.hrtime.bigint()
  let done = 0
  for (let rep = 0; rep < reps; rep++) {
    if (done >= 5 && (seconds(repsStart) > budgetS || seconds(filledAt) > 50)) break
    for (const r of shuffled(runners, random)) samples.get(r)?.push(r.run(r.iterations))
    done++
  }
  const repsSeconds = seconds(repsStart)
  for (const s of stores) await s.close()

  const cacheMiss = Math.round(Math.min(...(samples.get(chase) ?? [])) * 10) / 10

  const cases: DecisionCase[] = runners.map((r) => {
    const xs = samples.get(r) ?? []
    return { case: r.name, family: r.family, size: r.size, ns_per_op: Math.round(Math.min(...xs)), median_ns: Math.round(median(xs)), reps_ns: xs.map((x) => Math.round(x)), iterations: r.iterations }
  })
  addExtraCost(cases, cacheMiss)
  const flatness = flatnessOf(cases, (fam) => Math.max(...fam.map((c) => {
    const sorted = [...c.reps_ns].sort((a, b) => a - b)
    return (sorted[Math.floor(sorted.length / 4)] as number) / (sorted[0] as number) - 1
  })))
  return {
    reps: done,
    cases,
    flatness,
    cache_miss_ns: cacheMiss,
    chase_mib: chaseMib,
    target_ms: targetMs,
    gc: how,
    reps_seconds: Math.round(repsSeconds * 10) / 10,
    total_seconds: Math.round(seconds(t0) * 10) / 10
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await decisionMicrobench()
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(r))
  } else {
    const w = Math.max(...r.cases.map((c) => c.case.length))
    console.log(`${'case'.padEnd(w)}  ${'ns/op'.padStart(6)}  ${'median'.padStart(6)}  ${'p25'.padStart(6)}  extra over 100 in use`)
    for (const c of r.cases) {
      const p25 = [...c.reps_ns].sort((a, b) => a - b)[Math.floor(c.reps_ns.length / 4)] as number
      const extra = c.extra_ns === undefined ? '' : `${c.extra_ns} ns = ${c.extra_misses} misses`
      console.log(`${c.case.padEnd(w)}  ${String(c.ns_per_op).padStart(6)}  ${String(c.median_ns).padStart(6)}  ${String(p25).padStart(6)}  ${extra}`)
    }
    console.log('')
    for (const f of r.flatness) console.log(`${`${f.family} [${f.measures}]`.padEnd(44)} ${f.sizes.join(' / ')}: ${f.min_ns}..${f.max_ns} ns/op, spread ${(f.spread * 100).toFixed(1)} %, noise ${(f.noise * 100).toFixed(1)} % -> ${f.verdict} (tolerance ${FLAT_TOLERANCE * 100} %)`)
    console.log(`\nmemory miss (dependent random read over ${r.chase_mib} MiB): ${r.cache_miss_ns} ns/step`)
    console.log(`${r.reps} repetitions of ~${r.target_ms} ms per case in ${r.reps_seconds} s (whole run ${r.total_seconds} s); GC before the repetitions: ${r.gc}`)
  }
}
