/**
 * CredentialCache: found only by the whole credential, whatever its key characters share with
 * others; bounded; the entry added longest ago goes first.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { CredentialCache, ownCopy, type CredentialEntry } from '../../src/store/index.js'

interface E extends CredentialEntry<E> { readonly n: number }
const entry = (credential: string, n: number): E => ({ credential: ownCopy(credential), n, next: null })
const random = (): string => randomBytes(30).toString('base64url')

t.test('found by the whole credential, a copy of it cut from a longer string too', async (t) => {
  const cache = new CredentialCache<E>(10, 'start')
  const a = random()
  cache.add(entry(a, 1))
  const header = `x=1; c=${a}; y=2`
  t.equal(cache.get(header.slice(7, 7 + a.length))?.n, 1)
  t.equal(cache.get(a + 'x'), undefined, 'longer')
  t.equal(cache.get(a.slice(0, -1)), undefined, 'shorter')
  t.equal(cache.get(a.slice(0, 10) + 'A'.repeat(a.length - 10)), undefined, 'the same key characters, another credential')
  t.equal(cache.get(''), undefined, 'any string can be looked up')
  t.equal(cache.get('abc'), undefined)
  cache.add(entry(a, 2))
  t.equal(cache.get(a)?.n, 2, 'added again: replaced')
  t.equal(cache.size, 1)
  cache.delete(a)
  t.equal(cache.get(a), undefined)
  t.equal(cache.size, 0)
})

for (const at of ['start', 'end'] as const) {
  t.test(`credentials sharing their key characters (at the ${at}) are chained, four at most`, async (t) => {
    const cache = new CredentialCache<E>(100, at)
    const same = 'QkVBUg' // the key characters of all of them
    const alike = Array.from({ length: 6 }, () => at === 'start' ? same + random() : random() + same)
    const other = random()
    cache.add(entry(other, 99))
    alike.slice(0, 4).forEach((c, i) => cache.add(entry(c, i)))
    alike.slice(0, 4).forEach((c, i) => t.equal(cache.get(c)?.n, i, `entry ${i} of the chain`))
    t.equal(cache.size, 5)

    cache.delete(alike[1] as string)
    t.equal(cache.get(alike[1] as string), undefined, 'deleted from the middle of a chain')
    for (const i of [0, 2, 3]) t.equal(cache.get(alike[i] as string)?.n, i, 'the rest of the chain stays')
    t.equal(cache.size, 4)

    cache.add(entry(alike[4] as string, 4))
    cache.add(entry(alike[5] as string, 5))
    t.equal(cache.size, 5, 'four under one key, and the other')
    t.equal(cache.get(alike[0] as string), undefined, 'the one added longest ago under that key went')
    for (const i of [2, 3, 4, 5]) t.equal(cache.get(alike[i] as string)?.n, i)
    t.equal(cache.get(other)?.n, 99)

    cache.add(entry(alike[3] as string, 33))
    t.equal(cache.get(alike[3] as string)?.n, 33, 'replaced within a chain')
    t.equal(cache.size, 5)
  })
}

t.test('at most max entries: the key added longest ago goes', async (t) => {
  const cache = new CredentialCache<E>(3, 'end')
  const cs = Array.from({ length: 5 }, random)
  cs.slice(0, 3).forEach((c, i) => cache.add(entry(c, i)))
  t.equal(cache.size, 3)
  t.equal(cache.get(cs[0] as string)?.n, 0, 'a hit does not save it: the order is the order of adding')
  cache.add(entry(cs[3] as string, 3))
  t.equal(cache.get(cs[0] as string), undefined, 'the first added went first')
  cache.add(entry(cs[1] as string, 11)) // added again: now the newest
  cache.add(entry(cs[4] as string, 4))
  t.equal(cache.get(cs[2] as string), undefined)
  t.equal(cache.get(cs[1] as string)?.n, 11)
  t.equal(cache.get(cs[3] as string)?.n, 3)
  t.equal(cache.get(cs[4] as string)?.n, 4)
  t.equal(cache.size, 3)
})

t.test('ownCopy: the same characters, a string of its own', async (t) => {
  const s = random()
  t.equal(ownCopy(`;${s};`.slice(1, -1)), s)
})
