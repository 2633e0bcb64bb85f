import t from 'tap'
import { requestId } from '../../src/proxy/request-id.js'

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('random version 4 UUIDs, as crypto.randomUUID() makes them, across many batches', async (t) => {
  const n = 20_000 // 78 batches of 256
  const seen = new Set<string>()
  let malformed = 0
  for (let i = 0; i < n; i++) {
    const id = requestId()
    if (!V4.test(id)) malformed++
    seen.add(id)
  }
  t.equal(malformed, 0, 'every id is a version 4 UUID (version nibble 4, variant 10)')
  t.equal(seen.size, n, 'no id repeats, within a batch or between batches')
})

t.test('the random digits are uniform: each of the 30 random hex positions, each value', async (t) => {
  // Positions 14 (version) and 19 (variant) are fixed or partly fixed; the other 30 digits of
  // 32 are random. A formatting bug (a digit taken twice, a byte left unfilled, a batch not
  // refilled) shows as a skewed count.
  const n = 32_000
  const counts = Array.from({ length: 36 }, () => new Array<number>(16).fill(0))
  for (let i = 0; i < n; i++) {
    const id = requestId()
    for (let p = 0; p < 36; p++) {
      if (id.charCodeAt(p) === 0x2d) continue
      const row = counts[p] as number[]
      const digit = parseInt(id[p] as string, 16)
      row[digit] = (row[digit] as number) + 1
    }
  }
  const expected = n / 16
  let worst = 0
  for (let p = 0; p < 36; p++) {
    if (p === 8 || p === 13 || p === 14 || p === 18 || p === 19 || p === 23) continue
    // Chi-square with 15 degrees of freedom: 37.7 is the 0.1 % point; 30 positions tested.
    const chi = (counts[p] as number[]).reduce((s, c) => s + (c - expected) ** 2 / expected, 0)
    worst = Math.max(worst, chi)
  }
  t.ok(worst < 50, `worst position's chi-square ${worst.toFixed(1)} (15 degrees of freedom)`)
  // The variant digit takes 8, 9, a or b, each about a quarter of the time.
  const variant = counts[19] as number[]
  for (const v of [8, 9, 10, 11]) t.ok(Math.abs((variant[v] as number) - n / 4) < n / 40, `variant digit ${v.toString(16)}: ${variant[v]} of ${n}`)
})
