/**
 * A bounded in-process map for credentials cut from request headers (a sealed session cookie,
 * a bearer token), looked up on every request.
 *
 * A Map keyed by the credential itself has to hash it anew on every request, because the
 * string is new each time (cut from the header just parsed): ~400 ns for a 150-character
 * cookie, ~2 µs for a 1 KB token. Here the key is a small integer built from five characters
 * of the credential that are random in every genuine one (a cookie's IV, a token's
 * signature), so the table hashes and compares it in place; the whole credential is then
 * compared with the one stored. Entries whose keys collide are chained (at most CHAIN_MAX).
 *
 * Only genuine credentials should be added (after unsealing, after verifying), so an attacker
 * cannot choose the keys of what is stored; a lookup with any string is safe, it just misses.
 *
 * Order is the order of adding, as in a Map: when more than `max` entries are held, the key
 * added longest ago goes with its chain. A hit reorders nothing (an LRU's hit touches its
 * list's neighbours, more memory per lookup as the table grows).
 */

/** What a CredentialCache holds: the credential it is found by, and the cache's own link. */
export interface CredentialEntry<E> {
  readonly credential: string
  /** The next entry under the same key; the cache's to set. */
  next: E | null
}

/** Where the random characters of a credential are: its first five, or its last five. */
export type RandomAt = 'start' | 'end'

/** Entries kept under one key at most (by chance, a few of 100,000 random credentials share a key: 2 in one trial). */
const CHAIN_MAX = 4

/** The 6-bit value of each base64url character (anything else counts as 0: it only ever misses). */
const SIXBITS = new Uint8Array(128)
for (const [i, ch] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) SIXBITS[ch.charCodeAt(0)] = i

/** 30 bits: the 6 of each of five base64url characters. */
function keyOf (s: string, at: RandomAt): number {
  const i = at === 'start' ? 0 : s.length - 5
  const t = SIXBITS
  return ((t[s.charCodeAt(i) & 127] as number) << 24) | ((t[s.charCodeAt(i + 1) & 127] as number) << 18) | ((t[s.charCodeAt(i + 2) & 127] as number) << 12) |
    ((t[s.charCodeAt(i + 3) & 127] as number) << 6) | (t[s.charCodeAt(i + 4) & 127] as number)
}

function chainLength<E extends CredentialEntry<E>> (e: E | null | undefined): number {
  let n = 0
  for (; e !== undefined && e !== null; e = e.next) n++
  return n
}

/**
 * A copy of a credential to store: a string cut from a header keeps the whole header alive.
 * What is stored is ASCII (a sealed value is exact base64url, Sealer checks; a bearer token
 * passed its character check), which latin1 copies exactly.
 */
export function ownCopy (s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1')
}

export class CredentialCache<E extends CredentialEntry<E>> {
  private readonly table = new Map<number, E>()
  private count = 0

  constructor (private readonly max: number, private readonly at: RandomAt) {}

  get size (): number { return this.count }

  get (credential: string): E | undefined {
    for (let e: E | null | undefined = this.table.get(keyOf(credential, this.at)); e !== undefined && e !== null; e = e.next) {
      if (e.credential === credential) return e
    }
    return undefined
  }

  /** Adds `entry` (its credential an `ownCopy`), in place of an entry with the same credential. */
  add (entry: E): void {
    const key = keyOf(entry.credential, this.at)
    const first = this.table.get(key)
    const before = chainLength(first)
    let rest = first ?? null
    if (rest !== null) rest = without(rest, entry.credential)
    entry.next = rest
    let kept = 1
    let last = entry
    while (last.next !== null && kept < CHAIN_MAX) { last = last.next; kept++ }
    last.next = null // beyond CHAIN_MAX under one key, the entry added longest ago goes
    this.count += kept - before
    // Moved to the end: the order is the order of adding.
    this.table.delete(key)
    this.table.set(key, entry)
    while (this.count > this.max) {
      const oldest = this.table.keys().next().value as number
      this.count -= chainLength(this.table.get(oldest))
      this.table.delete(oldest)
    }
  }

  delete (credential: string): void {
    const key = keyOf(credential, this.at)
    const first = this.table.get(key)
    if (first === undefined) return
    const before = chainLength(first)
    const rest = without(first, credential)
    this.count -= before - chainLength(rest)
    if (rest === null) this.table.delete(key)
    else this.table.set(key, rest)
  }
}

/** The chain from `e` without the entry for `credential` (the entries are relinked). */
function without<E extends CredentialEntry<E>> (e: E, credential: string): E | null {
  if (e.credential === credential) return e.next
  let prev = e
  for (let x = e.next; x !== null; prev = x, x = x.next) {
    if (x.credential === credential) { prev.next = x.next; break }
  }
  return e
}
