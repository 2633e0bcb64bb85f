/**
 * Memory against live sessions: a fresh `moatless serve` on the Redis store, with a configured
 * `session.cache_size` (the limit of both per-process caches a session fills: the session
 * cache, sessions.ts, and the unsealed-cookie cache, session-stage.ts); sessions are created in
 * Redis in stages (e.g. 10,000 → 20,000 → 50,000 → 100,000) and after each stage every new
 * session is used once through the proxy (one request each, its own sealed cookie), so each
 * one goes through the real caches. After each stage, a 1 s pause, then the proxy's RSS and V8
 * heap from its admin /metrics, as they are and again after a full GC in the proxy (started
 * with --expose-gc and gc-on-signal.mjs): garbage not yet collected is not memory the caches hold.
 *
 * Bounded means: once the sessions used outnumber the configured limit, RSS stops growing with
 * sessions: RSS (after GC) at the last stage is within 10 % of RSS (after GC) at the first stage
 * with at least twice the limit in sessions. Not the first stage past the limit: that one still
 * includes the warm-up of eviction (the heap growing to the size the GC settles at when entries
 * are dropped as fast as they are added).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { Sealer } from '../src/authn/seal.js'
import { Sessions } from '../src/authn/sessions.js'
import type { RedisStore, SessionRecord } from '../src/store/index.js'
import { load, processMemory, round, SESSION_SECRET, sleep, type MoatlessProcess } from './harness.js'

export const RSS_TOLERANCE = 0.10
/** The reference stage for "bounded" has at least this many times the limit in sessions. */
export const RSS_REFERENCE_FACTOR = 2

type MemoryFigures = Awaited<ReturnType<typeof processMemory>>
export interface RssStage extends MemoryFigures {
  sessions: number
  requests: number
  /** Requests not answered 403 (their session was not found, or an error): should be 0. */
  not_found: number
  after_gc: MemoryFigures
}
export interface RssResult {
  /** session.cache_size as configured for the proxy: the limit of both caches below. */
  cache_size: number
  /** Entry limit of the session cache (sessions.ts): session.cache_size. */
  session_cache_max: number
  /** Entry limit of the unsealed-cookie cache (session-stage.ts): session.cache_size. */
  cookie_cache_max: number
  baseline: MemoryFigures & { after_gc: MemoryFigures }
  stages: RssStage[]
  /** Sessions at the reference stage: the first with at least RSS_REFERENCE_FACTOR x the limit (null: none). */
  reference_sessions: number | null
  /** RSS (after a full GC) growth from the reference stage to the last stage (fraction), or null if not measured. */
  growth_beyond_limit: number | null
  /** The same, RSS as read without forcing a GC. */
  growth_beyond_limit_raw: number | null
  /** The same, V8 heap used after a full GC. */
  heap_growth_beyond_limit: number | null
  bounded: boolean | null
  /** Sessions at the first stage at/above the limit (null: none): where bytes_per_cached_session is taken. */
  limit_sessions: number | null
  /** (RSS after GC at the first stage at/above the limit - baseline after GC) / limit, in bytes: what one cached session costs. */
  bytes_per_cached_session: number | null
  /** The same from V8 heap used after GC. */
  heap_bytes_per_cached_session: number | null
  /** baseline RSS after GC + limit x bytes_per_cached_session (MiB): what the limit predicts for any number of sessions. */
  predicted_rss_mib: number | null
  /** baseline RSS after GC + (sessions at the last stage) x bytes_per_cached_session (MiB): what unbounded caches would hold. */
  unbounded_rss_mib: number | null
  /** RSS after GC at the last stage against predicted_rss_mib (fraction). */
  last_vs_predicted: number | null
}

export async function measureRss (o: { moatless: MoatlessProcess; store: RedisStore; redis: Redis; prefix: string; from: string; host: string; stages: number[]; connections: number; cacheSize: number }): Promise<RssResult> {
  const sealer = new Sealer(SESSION_SECRET, 'cookie')
  // Every request is one the rules deny after finding the session (403, rule
  // no-contractors-in-admin): the session goes through the same cookie and session caches as
  // for an allowed request, and nothing is forwarded, so the stages run about twice as fast.
  const url = `http://127.0.0.1:${o.moatless.port}/admin/settings`
  const headers = { host: o.host, accept: 'application/json' }
  const dir = mkdtempSync(join(tmpdir(), 'moatless-bench-rss-'))

  const makeSessions = async (from: number, to: number): Promise<string[]> => {
    const now = Date.now()
    const cookies: string[] = []
    const records: SessionRecord[] = []
    for (let i = from; i < to; i++) {
      const id = Sessions.newId()
      records.push({ id, sub: `rss-user-${i}`, email: `rss-user-${i}@example.com`, email_verified: true, groups: ['contractors'], claims: {}, tokens: '', created_at: now, last_seen: now, expires_at: now + 3_600_000, refreshed_at: now })
      cookies.push(`moatless_session=${sealer.seal({ s: id, o: o.from })}`)
    }
    // Written in pipelined batches straight to the store's session keys (putSession one by one
    // takes longer than the whole measurement); the store then reads them back as its own.
    for (let i = 0; i < records.length; i += 2000) {
      const p = o.redis.pipeline()
      for (const r of records.slice(i, i + 2000)) p.set(`${o.prefix}session:${r.id}`, JSON.stringify(r), 'PX', 3_600_000)
      await p.exec()
    }
    const first = records[0]
    if (first !== undefined && await o.store.getSession(first.id) === null) throw new Error('RSS: sessions written to Redis are not where the store reads them')
    return cookies
  }
  const drive = (cookies: string[]): ReturnType<typeof load> => {
    const file = join(dir, 'cookies.txt')
    writeFileSync(file, cookies.join('\n') + '\n')
    return load({ url, headers, connections: o.connections, amount: cookies.length, cookieFile: file })
  }

  /** Memory after a full GC in the proxy (gc-on-signal.mjs), so garbage not yet collected does not count. */
  const afterGc = async (): Promise<MemoryFigures> => {
    o.moatless.child.kill('SIGUSR2')
    await sleep(1000)
    return await processMemory(o.moatless.adminPort)
  }

  // Baseline: warm (JIT, connections, upstream pool) with one session, then measured.
  const warm = drive(await makeSessions(0, 1).then((c) => Array.from({ length: 5000 }, () => c[0] as string)))
  const notDenied = (r: ReturnType<typeof load>): number => r.total - (r.status['403'] ?? 0) + r.errors + r.timeouts
  if (notDenied(warm) > 0) throw new Error(`RSS warm-up: expected only 403 (session found, denied by rule), got ${JSON.stringify(warm.status)}, ${warm.errors} errors`)
  await sleep(1000)
  const baseline = { ...await processMemory(o.moatless.adminPort), after_gc: await afterGc() }

  const stages: RssStage[] = []
  let made = 1
  for (const target of o.stages) {
    if (target <= made) continue
    const t0 = Date.now()
    const cookies = await makeSessions(made, target)
    const t1 = Date.now()
    const r = drive(cookies)
    const t2 = Date.now()
    made = target
    await sleep(1000)
    const mem = await processMemory(o.moatless.adminPort)
    const gc = await afterGc()
    stages.push({ sessions: made, requests: r.total, not_found: notDenied(r), ...mem, after_gc: gc })
    console.log(`  ${made} sessions used: RSS ${mem.rss_mib} MiB, heap used ${mem.heap_used_mib} MiB; after a full GC: RSS ${gc.rss_mib} MiB, heap used ${gc.heap_used_mib} MiB (${r.total} requests this stage; ${Math.round((t1 - t0) / 1000)} s to create the sessions, ${Math.round((t2 - t1) / 1000)} s to use them${notDenied(r) > 0 ? `; ${notDenied(r)} answered other than 403: ${JSON.stringify(r.status)}` : ''})`)
  }

  const limit = o.cacheSize
  const atLimit = stages.find((s) => s.sessions >= limit)
  const reference = stages.find((s) => s.sessions >= RSS_REFERENCE_FACTOR * limit)
  const last = stages.at(-1)
  const measurable = reference !== undefined && last !== undefined && last.sessions > reference.sessions
  const growth = (f: (s: RssStage) => number): number | null => measurable ? round(f(last) / f(reference) - 1, 3) : null
  const afterGcGrowth = growth((s) => s.after_gc.rss_mib)
  const perSession = (f: (m: MemoryFigures) => number): number | null => atLimit === undefined ? null : Math.round(((f(atLimit.after_gc) - f(baseline.after_gc)) * 2 ** 20) / limit)
  const bytes = perSession((m) => m.rss_mib)
  /** Baseline RSS after GC plus `n` cached sessions at `bytes` each, in MiB. */
  const withSessions = (n: number, b: number): number => round(baseline.after_gc.rss_mib + (n * b) / 2 ** 20, 1)
  const predicted = bytes === null ? null : withSessions(limit, bytes)
  return {
    cache_size: limit,
    session_cache_max: limit,
    cookie_cache_max: limit,
    baseline,
    stages,
    reference_sessions: reference?.sessions ?? null,
    growth_beyond_limit: afterGcGrowth,
    growth_beyond_limit_raw: growth((s) => s.rss_mib),
    heap_growth_beyond_limit: growth((s) => s.after_gc.heap_used_mib),
    bounded: afterGcGrowth === null ? null : afterGcGrowth <= RSS_TOLERANCE,
    limit_sessions: atLimit?.sessions ?? null,
    bytes_per_cached_session: bytes,
    heap_bytes_per_cached_session: perSession((m) => m.heap_used_mib),
    predicted_rss_mib: predicted,
    unbounded_rss_mib: bytes === null || last === undefined ? null : withSessions(last.sessions, bytes),
    last_vs_predicted: predicted === null || last === undefined ? null : round(last.after_gc.rss_mib / predicted - 1, 3)
  }
}
