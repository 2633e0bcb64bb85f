/**
 * The decision micro-benchmark's results and verdicts (benchmarks/decision.ts measures; run.ts
 * reports): the families, what each is evidence of, flatness per family, and runs made in
 * processes of their own combined. Kept apart from decision.ts, which builds every size when it
 * is loaded.
 */
export const FLAT_TOLERANCE = 0.10

export type Family = 'apps' | 'apps: lookupHost alone' | 'apps: evaluate alone' | 'apps, each size compiled alone' | 'sessions, 100 in use' | 'sessions, all in use' | 'decision, 100 in use' | 'decision, all in use' | 'request, 100 in use' | 'request, all in use' | 'other'
export const FAMILIES = ['apps', 'apps: lookupHost alone', 'apps: evaluate alone', 'apps, each size compiled alone', 'sessions, 100 in use', 'sessions, all in use', 'decision, 100 in use', 'decision, all in use', 'request, 100 in use', 'request, all in use'] as const
/**
 * What a family's flatness is evidence of: 'data structure' = how the code scales (the issue's
 * target); 'memory latency' = the machine's cache/TLB misses on a working set larger than the
 * CPU caches (informational: shows what all users active costs, not how the code scales);
 * 'memory placement' = the same working set, packed or spread over the heap (informational).
 */
export type Measure = 'data structure' | 'memory latency' | 'memory placement'
export const FAMILY_MEASURES: Record<(typeof FAMILIES)[number], Measure> = {
  apps: 'data structure',
  'apps: lookupHost alone': 'data structure',
  'apps: evaluate alone': 'data structure',
  'apps, each size compiled alone': 'memory placement',
  'sessions, 100 in use': 'data structure',
  'sessions, all in use': 'memory latency',
  'decision, 100 in use': 'data structure',
  'decision, all in use': 'memory latency',
  'request, 100 in use': 'data structure',
  'request, all in use': 'memory latency'
}

export interface DecisionCase {
  case: string
  family: Family
  size: number
  ns_per_op: number
  median_ns: number
  reps_ns: number[]
  /** Iterations per repetition (chosen so one repetition takes about target_ms). */
  iterations?: number
  /** "all in use" cases: ns_per_op minus that of the same kind's "100 in use" case at the same size. */
  extra_ns?: number
  /** "all in use" cases: extra_ns / cache_miss_ns, the extra cost counted in memory misses. */
  extra_misses?: number
}
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
  /** What this family's verdict is evidence of (see FAMILY_MEASURES). */
  measures?: Measure
  /** Runs combined (combineRuns): each run's own spread, in the order of the runs. */
  run_spreads?: number[]
}
export interface DecisionResult {
  /** Runs in processes of their own combined into this result (combineRuns); absent: one. */
  runs?: number
  /** Repetitions done (DECISION_REPS unless the time budget stopped them earlier; combined: the median run's). */
  reps: number
  cases: DecisionCase[]
  flatness: Flatness[]
  /** ns per step of a dependent random read chain over a chase_mib buffer (one memory miss). */
  cache_miss_ns?: number
  chase_mib?: number
  /** Target time of one repetition of one case, ms. */
  target_ms?: number
  /** How the full GC before the repetitions was forced: node's --expose-gc, the V8 flag set at run time, or not at all. */
  gc?: 'global.gc' | 'v8 flag' | 'none'
  /** Seconds spent in the timed repetitions, and in the whole run. */
  reps_seconds?: number
  total_seconds?: number
}

/** The middle value (the upper one of an even count), as harness.ts's `median`; here so the micro-benchmark's process loads nothing of the harness. */
export const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }

/** Sets the "all in use" cases' extra_ns and extra_misses: their cost over the same kind's "100 in use" case at the same size. */
export function addExtraCost (cases: DecisionCase[], cacheMiss: number): void {
  for (const c of cases) {
    if (!c.family.endsWith(', all in use')) continue
    const hot = cases.find((x) => x.size === c.size && x.family === c.family.replace('all in use', '100 in use'))
    if (hot === undefined) continue
    c.extra_ns = c.ns_per_op - hot.ns_per_op
    c.extra_misses = Math.round((c.extra_ns / cacheMiss) * 10) / 10
  }
}

/** Each family's spread across its sizes and the verdict, with `noiseOf` the family's noise. */
export function flatnessOf (cases: DecisionCase[], noiseOf: (fam: DecisionCase[], family: Family) => number): Flatness[] {
  return FAMILIES.map((family) => {
    const fam = cases.filter((c) => c.family === family)
    const min = Math.min(...fam.map((c) => c.ns_per_op))
    const max = Math.max(...fam.map((c) => c.ns_per_op))
    const spread = Math.round((max / min - 1) * 1000) / 1000
    const noise = Math.round(noiseOf(fam, family) * 1000) / 1000
    const verdict = spread <= FLAT_TOLERANCE ? 'flat' : spread > FLAT_TOLERANCE + noise ? 'not flat' : 'inconclusive'
    return { family, sizes: fam.map((c) => c.size), min_ns: min, max_ns: max, spread, noise, verdict, flat: verdict === 'inconclusive' ? null : verdict === 'flat', measures: FAMILY_MEASURES[family] }
  })
}

/**
 * Runs of the micro-benchmark made in processes of their own, combined. Where a process's
 * objects land in its heap differs from process to process (the same run gave the 100,000-session
 * request case 557 ns in one process and 770 ns in another; benchmarks/NOTES-hot-path.md, ninth
 * round), and one run measures one such layout. Combined, each case's ns/op is the median of the
 * runs' (each the fastest repetition of its run), its median_ns the median of theirs, its
 * reps_ns all of theirs; each family's spread and verdict come from those medians, its noise is
 * the median of the runs' noise, and `run_spreads` keeps each run's own spread. A layout that
 * favours or penalizes one size in one process then moves the result only when it does so in
 * most of them.
 */
export function combineRuns (runs: DecisionResult[]): DecisionResult {
  const first = runs[0]
  if (first === undefined) throw new Error('combineRuns: no runs')
  if (runs.length === 1) return first
  const cases: DecisionCase[] = first.cases.map((c) => {
    const same = runs.map((r) => {
      const x = r.cases.find((y) => y.case === c.case)
      if (x === undefined) throw new Error(`combineRuns: case "${c.case}" missing from a run`)
      return x
    })
    return { case: c.case, family: c.family, size: c.size, ns_per_op: median(same.map((x) => x.ns_per_op)), median_ns: median(same.map((x) => x.median_ns)), reps_ns: same.flatMap((x) => x.reps_ns), iterations: c.iterations }
  })
  const cacheMiss = median(runs.map((r) => r.cache_miss_ns ?? Number.NaN))
  addExtraCost(cases, cacheMiss)
  const flatness = flatnessOf(cases, (_fam, family) => median(runs.map((r) => r.flatness.find((f) => f.family === family)?.noise ?? Number.NaN)))
  for (const f of flatness) f.run_spreads = runs.map((r) => r.flatness.find((x) => x.family === f.family)?.spread ?? Number.NaN)
  return {
    ...first,
    runs: runs.length,
    reps: median(runs.map((r) => r.reps)),
    cases,
    flatness,
    cache_miss_ns: cacheMiss,
    reps_seconds: Math.round(runs.reduce((a, r) => a + (r.reps_seconds ?? 0), 0) * 10) / 10,
    total_seconds: Math.round(runs.reduce((a, r) => a + (r.total_seconds ?? 0), 0) * 10) / 10
  }
}

