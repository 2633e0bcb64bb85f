/**
 * benchmarks/decision-result.ts: the decision micro-benchmark's runs, each made in a process of
 * its own (its own heap layout), combined into one result. One run whose layout penalized one
 * size must not decide the verdict; the same penalty in most runs must.
 */
import t from 'tap'
import { combineRuns, FAMILIES, flatnessOf, type DecisionCase, type DecisionResult, type Family } from '../../benchmarks/decision-result.js'

/** A run whose every family has sizes 100 / 10000 / 100000 at `base` ns, except `overrides` (case name -> ns). */
function run (base: number, overrides: Record<string, number> = {}, noise = 0.02): DecisionResult {
  const cases: DecisionCase[] = []
  for (const family of FAMILIES) {
    for (const size of [100, 10_000, 100_000]) {
      const name = `${family} @ ${size}`
      const ns = overrides[name] ?? base
      // Four repetitions: the fastest is ns, the 25th percentile ns * (1 + noise).
      cases.push({ case: name, family: family as Family, size, ns_per_op: ns, median_ns: Math.round(ns * 1.05), reps_ns: [ns, Math.round(ns * (1 + noise)), ns + 50, ns + 60] })
    }
  }
  return { reps: 4, cases, flatness: flatnessOf(cases, () => noise), cache_miss_ns: 200, target_ms: 6 }
}

const REQ = 'request, 100 in use'

t.test('one run whose layout penalized a size does not decide the verdict', async (t) => {
  const runs = [run(580), run(560, { [`${REQ} @ 100000`]: 770 }), run(600)]
  const combined = combineRuns(runs)
  const f = combined.flatness.find((x) => x.family === REQ)
  t.ok(f !== undefined)
  t.same(f?.run_spreads, [0, 0.375, 0], 'each run\'s own spread kept, in order')
  t.equal(combined.cases.find((c) => c.case === `${REQ} @ 100000`)?.ns_per_op, 600, 'per case: the median of the runs (580, 770, 600)')
  t.equal(combined.cases.find((c) => c.case === `${REQ} @ 100`)?.ns_per_op, 580, 'per case: the median of the runs (580, 560, 600)')
  t.equal(f?.spread, 0.034, 'spread from the medians: 600 / 580 - 1')
  t.equal(f?.verdict, 'flat')
  t.equal(combined.runs, 3)
  t.equal(combined.cases.find((c) => c.case === `${REQ} @ 100000`)?.reps_ns.length, 12, 'every run\'s repetitions kept')
})

t.test('the same penalty in most runs decides it', async (t) => {
  const slow = { [`${REQ} @ 100000`]: 770 }
  const combined = combineRuns([run(580, slow), run(560, slow), run(600)])
  const f = combined.flatness.find((x) => x.family === REQ)
  t.equal(f?.max_ns, 770)
  t.equal(f?.min_ns, 580)
  t.equal(f?.verdict, 'not flat', `spread ${f?.spread} beyond tolerance + noise ${f?.noise}`)
})

t.test('noise: the median of the runs\' noise; within tolerance + noise the verdict is inconclusive', async (t) => {
  const slow = { [`${REQ} @ 100000`]: 660 }
  const runs = [run(580, slow, 0.01), run(580, slow, 0.08), run(580, slow, 0.30)]
  const combined = combineRuns(runs)
  const f = combined.flatness.find((x) => x.family === REQ)
  t.equal(f?.noise, 0.08)
  t.equal(f?.spread, 0.138)
  t.equal(f?.verdict, 'inconclusive')
  t.equal(f?.flat, null)
})

t.test('"all in use" cases: extra cost over "100 in use" recomputed from the combined values', async (t) => {
  const walk = 'request, all in use'
  const runs = [
    run(600, { [`${walk} @ 100000`]: 2600 }),
    run(600, { [`${walk} @ 100000`]: 2000 }),
    run(600, { [`${walk} @ 100000`]: 2400 })
  ]
  runs[1]!.cache_miss_ns = 180
  runs[2]!.cache_miss_ns = 220
  const c = combineRuns(runs).cases.find((x) => x.case === `${walk} @ 100000`)
  t.equal(c?.ns_per_op, 2400)
  t.equal(c?.extra_ns, 1800)
  t.equal(c?.extra_misses, 9, '1800 ns / the median miss, 200 ns')
})

t.test('one run: as it is', async (t) => {
  const r = run(500)
  t.equal(combineRuns([r]), r)
  t.throws(() => combineRuns([]))
})
