/**
 * The decision alone, as a micro-benchmark: host lookup + rule evaluation against rule sets of
 * 10 to 10,000 apps (requests for 10 of them at every size), and session lookup from the
 * in-process cache with 100 to 100,000 live sessions. Flat numbers across sizes mean the
 * per-request cost does not grow with the deployment.
 *
 * Method: every size is built first and stays alive; one warm-up pass runs every case (so no
 * size pays for JIT compilation alone); then REPS repetitions time every case, in a different
 * order each time (so no case always follows the same one). Each
 * case reports the fastest of its repetitions (other work on the machine only ever adds time, so
 * the minimum is the least noisy estimate of the code's own cost) and the median beside it. A
 * family is "flat" when its slowest size is within 10 % of its fastest (max / min <= 1.10).
 * How far to trust that: noise = how far a case's 25th-percentile repetition lies above its
 * fastest (worst case of the family). A spread above 10 % but within 10 % + noise is reported
 * as inconclusive rather than as not flat; on a quiet machine the noise is a few per cent.
 *
 * Sessions are measured two ways, both with n sessions live in the cache:
 *  - "100 in use": requests come from the same 100 sessions whatever n is: does the cost grow
 *    with the number of live sessions (the data structures)?
 *  - "all in use": requests walk all n sessions with a large stride, so at n = 100,000 the
 *    working set no longer fits in CPU caches: a replica whose 100,000 users are all active.
 *
 *   npm run bench:decision            prints a table
 *   tsx benchmarks/decision.ts --json prints one JSON document (used by run.ts)
 * Env: DECISION_REPS (default 15: many short repetitions, so that some run undisturbed).
 */
import { compileRuleSet, evaluate } from '../src/authz/index.js'
import type { RuleSet } from '../src/authz/index.js'
import { Sessions } from '../src/authn/sessions.js'
import { Sealer } from '../src/authn/seal.js'
import { App, type AppConfig } from '../src/config/schema.js'
import { NO_DEVICE, type Identity } from '../src/context.js'
import { MemoryStore } from '../src/store/index.js'

export const APP_SIZES = [10, 100, 1000, 10_000]
export const SESSION_SIZES = [100, 10_000, 100_000]
export const FLAT_TOLERANCE = 0.10

export type Family = 'apps' | 'sessions, 100 in use' | 'sessions, all in use' | 'other'
export const FAMILIES = ['apps', 'sessions, 100 in use', 'sessions, all in use'] as const
export interface DecisionCase { case: string; family: Family; size: number; ns_per_op: number; median_ns: number; reps_ns: number[] }
export interface Flatness {
  family: Family
  sizes: number[]
  min_ns: number
  max_ns: number
  /** max / min - 1 across the family's sizes. */
  spread: number
  /** Worst (p25 - min) / min across the family's cases: the measurement's own noise. */
  noise: number
  verdict: 'flat' | 'not flat' | 'inconclusive'
  /** true flat, false not flat, null inconclusive. */
  flat: boolean | null
}
export interface DecisionResult { reps: number; cases: DecisionCase[]; flatness: Flatness[] }

function apps (n: number): AppConfig[] {
  const out: AppConfig[] = []
  for (let i = 0; i < n; i++) {
    out.push(App.parse({
      name: `app-${i}`,
      from: `https://app-${i}.example.com`,
      to: 'http://127.0.0.1:9000',
      public_paths: ['/static/**'],
      rules: [
        { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
        { name: 'engineers', allow: { groups: ['engineering'], methods: ['GET', 'POST'] } },
        { name: 'staff-read', allow: { domains: ['example.com'], methods: ['GET', 'HEAD'] } }
      ]
    }))
  }
  return out
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }

interface Runner { name: string; family: DecisionCase['family']; size: number; iterations: number; run: (iterations: number) => Promise<number> }

export async function decisionMicrobench (reps = Number(process.env.DECISION_REPS ?? 15)): Promise<DecisionResult> {
  const identity: Identity = Object.freeze({ sub: 'u', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: {}, via: 'session' })
  const runners: Runner[] = []

  for (const n of APP_SIZES) {
    const compiled = compileRuleSet(apps(n), [])
    if (!compiled.ok) throw new Error('compile failed')
    const rs: RuleSet = compiled.ruleset
    // The same request mix at every size: 10 apps in use, spread over the whole rule set, so
    // only the number of configured apps changes (not how many different hosts are asked for).
    const hosts = Array.from({ length: 64 }, (_, i) => `app-${Math.floor(((i % 10) * n) / 10)}.example.com`)
    runners.push({
      name: `decide (lookupHost + evaluate), ${n} apps`,
      family: 'apps',
      size: n,
      iterations: 50_000,
      run: async (iterations) => {
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
    })
  }

  const sealer = new Sealer('bench-session-secret-0123456789abcdef-0123456789', 'cookie')
  const cookie = sealer.seal({ s: 'x'.repeat(43), o: 'https://wiki.example.com' })
  runners.push({
    name: 'unseal session cookie (AES-256-GCM; Moatless caches the result per cookie value)',
    family: 'other',
    size: 1,
    iterations: 10_000,
    run: async (iterations) => {
      const start = process.hrtime.bigint()
      for (let i = 0; i < iterations; i++) if (sealer.unseal(cookie) === null) throw new Error('unseal failed')
      return Number(process.hrtime.bigint() - start) / iterations
    }
  })

  const stores: MemoryStore[] = []
  for (const n of SESSION_SIZES) {
    const store = new MemoryStore()
    stores.push(store)
    // A cache big enough for every size measured: this measures lookup cost, not evictions.
    const sessions = new Sessions(store, { lifetimeMs: 3_600_000, idleMs: 3_600_000, outageGraceMs: 30_000 }, 200_000)
    const ids: string[] = []
    for (let i = 0; i < n; i++) {
      const s = await sessions.create({ sub: `u${i}`, email: `u${i}@example.com`, email_verified: true, groups: ['engineering'], claims: {}, tokens: '' })
      ids.push(s.id)
      await sessions.lookup(s.id)
    }
    // 100 sessions spread over the whole cache (not the 100 newest), and all n of them.
    const hot = Array.from({ length: 100 }, (_, i) => ids[Math.floor((i * n) / 100)] as string)
    const walks: [Family, string, string[]][] = [
      ['sessions, 100 in use', `session lookup (cached), ${n} live sessions, 100 in use`, hot],
      ['sessions, all in use', `session lookup (cached), ${n} live sessions, all in use`, ids]
    ]
    for (const [family, name, pool] of walks) {
      const m = pool.length
      runners.push({
        name,
        family,
        size: n,
        iterations: 50_000,
        run: async (iterations) => {
          let ok = 0
          const start = process.hrtime.bigint()
          for (let i = 0; i < iterations; i++) if ((await sessions.lookup(pool[(i * 7919) % m] as string)).status === 'ok') ok++
          const ns = Number(process.hrtime.bigint() - start) / iterations
          if (ok !== iterations) throw new Error('a session lookup missed: benchmark is wrong')
          return ns
        }
      })
    }
  }

  for (const r of runners) await r.run(Math.min(r.iterations, 50_000))
  const samples = new Map<Runner, number[]>(runners.map((r) => [r, []]))
  // A different order every repetition (fixed seed): no case always runs right after the same one.
  let seed = 12345
  const random = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000 }
  for (let rep = 0; rep < reps; rep++) {
    const order = [...runners]
    for (let i = order.length - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [order[i], order[j]] = [order[j] as Runner, order[i] as Runner] }
    for (const r of order) samples.get(r)?.push(await r.run(r.iterations))
  }
  for (const s of stores) await s.close()

  const cases: DecisionCase[] = runners.map((r) => {
    const xs = samples.get(r) ?? []
    return { case: r.name, family: r.family, size: r.size, ns_per_op: Math.round(Math.min(...xs)), median_ns: Math.round(median(xs)), reps_ns: xs.map((x) => Math.round(x)) }
  })
  const flatness: Flatness[] = FAMILIES.map((family) => {
    const fam = cases.filter((c) => c.family === family)
    const min = Math.min(...fam.map((c) => c.ns_per_op))
    const max = Math.max(...fam.map((c) => c.ns_per_op))
    const spread = Math.round((max / min - 1) * 1000) / 1000
    const noise = Math.round(Math.max(...fam.map((c) => {
      const sorted = [...c.reps_ns].sort((a, b) => a - b)
      return (sorted[Math.floor(sorted.length / 4)] as number) / (sorted[0] as number) - 1
    })) * 1000) / 1000
    const verdict = spread <= FLAT_TOLERANCE ? 'flat' : spread > FLAT_TOLERANCE + noise ? 'not flat' : 'inconclusive'
    return { family, sizes: fam.map((c) => c.size), min_ns: min, max_ns: max, spread, noise, verdict, flat: verdict === 'inconclusive' ? null : verdict === 'flat' }
  })
  return { reps, cases, flatness }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await decisionMicrobench()
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(r))
  } else {
    for (const c of r.cases) console.log(`${c.case}: ${c.ns_per_op} ns/op (median ${c.median_ns}; reps: ${c.reps_ns.join(', ')})`)
    for (const f of r.flatness) console.log(`${f.family} ${f.sizes.join(' / ')}: ${f.min_ns}..${f.max_ns} ns/op, spread ${(f.spread * 100).toFixed(1)} %, noise ${(f.noise * 100).toFixed(1)} % -> ${f.verdict} (tolerance ${FLAT_TOLERANCE * 100} %)`)
  }
}
