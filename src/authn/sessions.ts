import { randomBytes } from 'node:crypto'
import type { Identity } from '../context.js'
import { SingleFlight, type SessionRecord, type Store } from '../store/index.js'

export interface SessionPolicy {
  lifetimeMs: number
  idleMs: number
  /** store.store_outage_grace: how long verified sessions outlive a store outage. */
  outageGraceMs: number
  /** session.refresh_interval: re-check the user at the IdP this often (0: never). */
  refreshMs?: number
}

export type SessionLookup =
  | { status: 'ok'; record: SessionRecord; identity: Identity }
  | { status: 'none' }
  | { status: 'unavailable' }

const NONE: SessionLookup = Object.freeze({ status: 'none' })
const UNAVAILABLE: SessionLookup = Object.freeze({ status: 'unavailable' })

/** How long a cached session is trusted without asking the store (pub/sub invalidates earlier). */
const CACHE_TTL_MS = 60_000

/**
 * After this replica has started a refresh for a cached session, how long the same cache entry
 * waits before it starts another (at most `session.refresh_interval`). A refresh that succeeds
 * replaces the entry (session-updated event), so this only spaces out the ones that leave it as
 * it was: no refresh token to check with, another replica holding the refresh lease, the IdP
 * unreachable. Without it each of those started again on the next request, which kept a lease,
 * a read and a release going to the store for as long as requests came (issue 6).
 */
const REFRESH_RETRY_MS = 30_000

/** A cache entry as a memo holds it (opaque outside this file). */
export type SessionHit = CachedSession

/**
 * What a caller that meets the same session id again and again keeps of it (the session stage
 * keeps one per unsealed cookie): the id, and the cache entry found for it last time. While the
 * cache still holds that entry, `cachedFor` answers from it without a lookup in the cache's
 * table, whose cost grows with the number of live sessions.
 */
export interface SessionMemo { readonly id: string; hit: SessionHit | null }

/**
 * A session as the cache holds it, and at the same time the answer a lookup gives for it: a
 * hit allocates nothing and reads this one object (the times it checks are copied out of the
 * record), which keeps lookups about as fast with 100,000 live sessions as with 100.
 */
class CachedSession {
  readonly status = 'ok' as const
  readonly identity: Identity
  readonly expiresAt: number
  readonly refreshedAt: number
  /** Set once the cache no longer holds this entry (evicted, revoked, replaced, cleared): a memo of it is then void. */
  dropped = false
  /** When this replica last started a refresh for this entry (-Infinity: never; a double from the start, like the other times, so the first assignment keeps the object's shape). */
  refreshStartedAt = -Infinity

  constructor (readonly record: SessionRecord, readonly fetchedAt: number, public lastSeen: number) {
    this.identity = toIdentity(record)
    this.expiresAt = record.expires_at
    this.refreshedAt = record.refreshed_at
  }
}

/**
 * Server-side sessions with an in-process cache so that steady-state requests need no store
 * round trip. Revocations arrive as store events and evict at once; after a store outage the
 * cache is dropped, because events may have been missed.
 *
 * The cache is a Map in order of fetching: a session in use is fetched again every
 * CACHE_TTL_MS, so the first entries are the ones longest unused, and the first to go when the
 * cache is full. (A hit does not reorder anything, unlike an LRU's.)
 */
export class Sessions {
  private readonly cache = new Map<string, CachedSession>()
  /** One store read per session at a time, however many requests wait for it. */
  private readonly reads = new SingleFlight<SessionLookup>()
  /**
   * Bumped by every revocation or update event and after an outage. A read that was under way
   * across one may hold what the event made stale: it answers only the requests that were
   * already waiting for it, and is neither cached nor shared with a request that came later.
   */
  private generation = 0

  constructor (private readonly store: Store, private policy: SessionPolicy, private readonly max = 100_000, private readonly now: () => number = Date.now) {
    store.onEvent((e) => {
      if (e.type !== 'session-revoked' && e.type !== 'session-updated') return
      this.generation++
      for (const id of e.ids) this.drop(id)
    })
    store.onRecover(() => {
      this.generation++
      for (const c of this.cache.values()) c.dropped = true
      this.cache.clear()
    })
  }

  setPolicy (policy: SessionPolicy): void { this.policy = policy }

  private onStale: ((record: SessionRecord) => void) | null = null
  /** Called for a session due for re-verification at the IdP: on a request, at most once per REFRESH_RETRY_MS (or refresh interval) per cache entry. */
  whenStale (fn: (record: SessionRecord) => void): void { this.onStale = fn }

  static newId (): string { return randomBytes(32).toString('base64url') }

  /** A new session record, not stored yet: its id can be handed out while it is being saved. */
  prepare (fields: Omit<SessionRecord, 'id' | 'created_at' | 'last_seen' | 'expires_at' | 'refreshed_at'>): SessionRecord {
    const now = this.now()
    return {
      ...fields,
      id: Sessions.newId(),
      created_at: now,
      last_seen: now,
      refreshed_at: now,
      expires_at: now + this.policy.lifetimeMs
    }
  }

  /**
   * Stores a new session and caches it, so the requests right after a sign-in (the handoff,
   * the first page) need no store read on this replica.
   */
  async save (record: SessionRecord): Promise<void> {
    await this.store.putSession(record, this.policy.idleMs)
    this.remember(record.id, new CachedSession(record, this.now(), record.last_seen))
  }

  async create (fields: Omit<SessionRecord, 'id' | 'created_at' | 'last_seen' | 'expires_at' | 'refreshed_at'>): Promise<SessionRecord> {
    const record = this.prepare(fields)
    await this.save(record)
    return record
  }

  /**
   * The answer from the cache alone, when it can give one: a session fetched within
   * CACHE_TTL_MS, or during a store outage one verified within the grace (else 'unavailable').
   * undefined: only the store can tell (use `lookup`).
   */
  cached (id: string): SessionLookup | undefined {
    const c = this.cache.get(id)
    return c === undefined ? undefined : this.answer(id, c)
  }

  /**
   * `cached(memo.id)`, from the entry the memo holds while the cache still holds it (one object
   * read instead of a lookup in a table of every live session); else from the cache, and the
   * memo then holds what was found.
   */
  cachedFor (memo: SessionMemo): SessionLookup | undefined {
    let c = memo.hit
    if (c === null || c.dropped) {
      const found = this.cache.get(memo.id)
      if (found === undefined) { memo.hit = null; return undefined }
      memo.hit = c = found
    }
    return this.answer(memo.id, c)
  }

  private answer (id: string, c: CachedSession): SessionLookup | undefined {
    const now = this.now()
    if (this.store.healthy) return now - c.fetchedAt < CACHE_TTL_MS ? this.check(id, c, now) : undefined
    if (now - this.store.lastHealthyAt() <= this.policy.outageGraceMs) return this.check(id, c, now)
    return UNAVAILABLE
  }

  async lookup (id: string): Promise<SessionLookup> {
    return this.cached(id) ?? await this.reads.run(`${this.generation}:${id}`, async () => await this.fetch(id))
  }

  private async fetch (id: string): Promise<SessionLookup> {
    const now = this.now()
    const gen = this.generation
    const c = this.cache.get(id)
    let record: SessionRecord | null
    try {
      record = await this.store.getSession(id)
    } catch {
      if (c !== undefined && now - this.store.lastHealthyAt() <= this.policy.outageGraceMs) return this.check(id, c, now)
      return UNAVAILABLE
    }
    if (record === null) { this.drop(id); return NONE }
    const fresh = new CachedSession(record, now, Math.max(record.last_seen, c?.lastSeen ?? 0))
    if (gen === this.generation) this.remember(id, fresh)
    return this.check(id, fresh, now)
  }

  private remember (id: string, entry: CachedSession): void {
    // Dropped first so that the entry moves to the end: the order is the order of fetching.
    this.drop(id)
    this.cache.set(id, entry)
    if (this.cache.size > this.max) this.drop(this.cache.keys().next().value as string)
  }

  /** Every entry leaves the cache here (or in onRecover), marked dropped so that no memo answers from it. */
  private drop (id: string): void {
    const c = this.cache.get(id)
    if (c === undefined) return
    c.dropped = true
    this.cache.delete(id)
  }

  private check (id: string, c: CachedSession, now: number): SessionLookup {
    const policy = this.policy
    if (now >= c.expiresAt || now - c.lastSeen >= policy.idleMs) {
      this.drop(id)
      return NONE
    }
    // Record activity in the store at most every min(60 s, idle/4): enough for idle_timeout
    // across replicas without a write per request.
    if (now - c.lastSeen >= Math.min(60_000, policy.idleMs / 4)) {
      c.lastSeen = now
      if (this.store.healthy) this.store.touchSession(id, now, policy.idleMs).catch(() => {})
    }
    const refreshMs = policy.refreshMs ?? 0
    if (refreshMs > 0 && this.onStale !== null && now - c.refreshedAt >= refreshMs && this.store.healthy &&
      now - c.refreshStartedAt >= Math.min(refreshMs, REFRESH_RETRY_MS)) {
      c.refreshStartedAt = now
      this.onStale(c.record)
    }
    return c
  }

  /** Ends a session on every replica. */
  async revoke (id: string): Promise<void> {
    await this.revokeMany([id])
  }

  async revokeMany (ids: string[]): Promise<void> {
    for (const id of ids) {
      this.drop(id)
      await this.store.deleteSession(id)
    }
    await this.store.publish({ type: 'session-revoked', ids })
  }
}

/** Frozen, groups included: one identity serves every request of the session until it is fetched again. */
export function toIdentity (r: SessionRecord): Identity {
  return Object.freeze({
    sub: r.sub,
    email: r.email,
    email_verified: r.email_verified,
    groups: Object.freeze([...r.groups]) as string[],
    claims: r.claims,
    via: 'session' as const,
    session_id: r.id,
    session_created_at: r.created_at
  })
}
