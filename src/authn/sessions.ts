import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Identity } from '../context.js'
import type { SessionRecord, Store } from '../store/index.js'

export interface SessionPolicy {
  lifetimeMs: number
  idleMs: number
  /** store.store_outage_grace: how long verified sessions outlive a store outage. */
  outageGraceMs: number
  /** session.refresh_interval: re-check the user at the IdP this often (0: never). */
  refreshMs?: number
}

interface Cached {
  record: SessionRecord
  identity: Identity
  fetchedAt: number
  lastSeen: number
}

export type SessionLookup =
  | { status: 'ok'; record: SessionRecord; identity: Identity }
  | { status: 'none' }
  | { status: 'unavailable' }

/** How long a cached session is trusted without asking the store (pub/sub invalidates earlier). */
const CACHE_TTL_MS = 60_000

/**
 * Server-side sessions with an in-process cache so that steady-state requests need no store
 * round trip. Revocations arrive as store events and evict at once; after a store outage the
 * cache is dropped, because events may have been missed.
 */
export class Sessions {
  private readonly cache: LRUCache<string, Cached>

  constructor (private readonly store: Store, private policy: SessionPolicy, max = 100_000, private readonly now: () => number = Date.now) {
    this.cache = new LRUCache<string, Cached>({ max })
    store.onEvent((e) => {
      if (e.type === 'session-revoked' || e.type === 'session-updated') for (const id of e.ids) this.cache.delete(id)
    })
    store.onRecover(() => this.cache.clear())
  }

  setPolicy (policy: SessionPolicy): void { this.policy = policy }

  private onStale: ((record: SessionRecord) => void) | null = null
  /** Called (at most once per request) for a session due for re-verification at the IdP. */
  whenStale (fn: (record: SessionRecord) => void): void { this.onStale = fn }

  static newId (): string { return randomBytes(32).toString('base64url') }

  async create (fields: Omit<SessionRecord, 'id' | 'created_at' | 'last_seen' | 'expires_at' | 'refreshed_at'>): Promise<SessionRecord> {
    const now = this.now()
    const record: SessionRecord = {
      ...fields,
      id: Sessions.newId(),
      created_at: now,
      last_seen: now,
      refreshed_at: now,
      expires_at: now + this.policy.lifetimeMs
    }
    await this.store.putSession(record, this.policy.idleMs)
    return record
  }

  async lookup (id: string): Promise<SessionLookup> {
    const now = this.now()
    let c = this.cache.get(id)
    const storeUp = this.store.healthy
    if (c !== undefined && storeUp && now - c.fetchedAt < CACHE_TTL_MS) return this.check(id, c, now)
    if (c !== undefined && !storeUp) {
      if (now - this.store.lastHealthyAt() <= this.policy.outageGraceMs) return this.check(id, c, now)
      return { status: 'unavailable' }
    }
    let record: SessionRecord | null
    try {
      record = await this.store.getSession(id)
    } catch {
      if (c !== undefined && now - this.store.lastHealthyAt() <= this.policy.outageGraceMs) return this.check(id, c, now)
      return { status: 'unavailable' }
    }
    if (record === null) { this.cache.delete(id); return { status: 'none' } }
    c = { record, identity: toIdentity(record), fetchedAt: now, lastSeen: Math.max(record.last_seen, c?.lastSeen ?? 0) }
    this.cache.set(id, c)
    return this.check(id, c, now)
  }

  private check (id: string, c: Cached, now: number): SessionLookup {
    if (now >= c.record.expires_at || now - c.lastSeen >= this.policy.idleMs) {
      this.cache.delete(id)
      return { status: 'none' }
    }
    // Record activity in the store at most every min(60 s, idle/4): enough for idle_timeout
    // across replicas without a write per request.
    if (now - c.lastSeen >= Math.min(60_000, this.policy.idleMs / 4)) {
      c.lastSeen = now
      if (this.store.healthy) this.store.touchSession(id, now, this.policy.idleMs).catch(() => {})
    }
    const refreshMs = this.policy.refreshMs ?? 0
    if (refreshMs > 0 && this.onStale !== null && now - c.record.refreshed_at >= refreshMs && this.store.healthy) this.onStale(c.record)
    return { status: 'ok', record: c.record, identity: c.identity }
  }

  /** Ends a session on every replica. */
  async revoke (id: string): Promise<void> {
    await this.revokeMany([id])
  }

  async revokeMany (ids: string[]): Promise<void> {
    for (const id of ids) {
      this.cache.delete(id)
      await this.store.deleteSession(id)
    }
    await this.store.publish({ type: 'session-revoked', ids })
  }
}

export function toIdentity (r: SessionRecord): Identity {
  return Object.freeze({
    sub: r.sub,
    email: r.email,
    email_verified: r.email_verified,
    groups: r.groups,
    claims: r.claims,
    via: 'session' as const,
    session_id: r.id,
    session_created_at: r.created_at
  })
}
