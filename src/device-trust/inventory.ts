/**
 * The device inventory as a replica sees it: store records behind an in-process cache, so that
 * a steady stream of requests from a known device needs no store round trip. Kept coherent
 * like the session cache (src/authn/sessions.ts): `device-changed` events evict at once, the
 * whole cache is dropped when the store comes back after an outage (events may have been
 * missed), and during an outage a cached answer is served only within `store_outage_grace`.
 */
import { LRUCache } from 'lru-cache'
import { SingleFlight, type DeviceRecord, type Store } from '../store/index.js'

export type DeviceLookup =
  | { status: 'ok'; record: DeviceRecord }
  | { status: 'none' }
  | { status: 'unavailable' }

interface Cached<T> { value: T; fetchedAt: number }

/** How long a cached answer is trusted without asking the store (events evict earlier). */
const CACHE_TTL_MS = 60_000

export interface InventoryOptions {
  outageGraceMs: number
  max?: number
  now?: () => number
}

export class DeviceInventory {
  /** id → record. */
  private readonly records: LRUCache<string, Cached<DeviceRecord>>
  /** One store read per device at a time, however many requests wait for it. */
  private readonly reads = new SingleFlight<DeviceRecord | null>()
  /**
   * The same per certificate: when a cached answer runs out, every request then in flight on the
   * device's connections would otherwise ask the store at once (32 connections: 64 commands).
   */
  private readonly fingerprintReads = new SingleFlight<DeviceRecord | null>()
  /** Ids no device has, apart so that made-up ids cannot push real records out. */
  private readonly unknownIds: LRUCache<string, Cached<null>>
  /** fingerprint → device id. */
  private readonly fingerprints: LRUCache<string, Cached<string>>
  /** Fingerprints no device has; any change may enrol one, so any event clears them all. */
  private readonly unknownFingerprints: LRUCache<string, Cached<null>>
  /** Bumped by every event: an answer fetched across a change is not cached. */
  private generation = 0
  private readonly now: () => number

  constructor (private readonly store: Store, private readonly opts: InventoryOptions) {
    const max = opts.max ?? 100_000
    this.records = new LRUCache({ max })
    this.fingerprints = new LRUCache({ max })
    this.unknownFingerprints = new LRUCache({ max: Math.max(1, Math.floor(max / 10)) })
    this.unknownIds = new LRUCache({ max: Math.max(1, Math.floor(max / 10)) })
    this.now = opts.now ?? Date.now
    store.onEvent((e) => {
      if (e.type !== 'device-changed') return
      this.generation++
      this.records.delete(e.id)
      this.unknownIds.delete(e.id)
      this.unknownFingerprints.clear()
    })
    store.onRecover(() => this.clear())
  }

  clear (): void {
    this.generation++
    this.records.clear()
    this.unknownIds.clear()
    this.fingerprints.clear()
    this.unknownFingerprints.clear()
  }

  /** Whether a cached answer may be used now; 'refetch' when the store should be asked. */
  private usable (c: Cached<unknown> | undefined, now: number): 'use' | 'refetch' | 'unavailable' {
    if (c === undefined) return this.store.healthy ? 'refetch' : 'unavailable'
    if (this.store.healthy) return now - c.fetchedAt < CACHE_TTL_MS ? 'use' : 'refetch'
    return this.withinGrace(now) ? 'use' : 'unavailable'
  }

  private withinGrace (now: number): boolean {
    return now - this.store.lastHealthyAt() <= this.opts.outageGraceMs
  }

  async byId (id: string): Promise<DeviceLookup> {
    const now = this.now()
    const unknown = this.unknownIds.get(id)
    if (unknown !== undefined && this.usable(unknown, now) === 'use') return { status: 'none' }
    const c = this.records.get(id)
    const use = this.usable(c, now)
    if (use === 'use' && c !== undefined) return { status: 'ok', record: c.value }
    if (use === 'unavailable') return { status: 'unavailable' }
    const gen = this.generation
    let record: DeviceRecord | null
    try {
      // Keyed by generation too: a request that comes after an event never joins a read begun before it.
      record = await this.reads.run(`${gen}:${id}`, async () => await this.store.getDevice(id))
    } catch {
      if (c !== undefined && this.withinGrace(now)) return { status: 'ok', record: c.value }
      return { status: 'unavailable' }
    }
    if (gen === this.generation) {
      if (record === null) { this.records.delete(id); this.unknownIds.set(id, { value: null, fetchedAt: now }) } else this.records.set(id, { value: record, fetchedAt: now })
    }
    return record === null ? { status: 'none' } : { status: 'ok', record }
  }

  async byFingerprint (fingerprint: string): Promise<DeviceLookup> {
    const now = this.now()
    const unknown = this.unknownFingerprints.get(fingerprint)
    if (unknown !== undefined && this.usable(unknown, now) === 'use') return { status: 'none' }
    const known = this.fingerprints.get(fingerprint)
    if (known !== undefined) {
      const use = this.usable(known, now)
      if (use === 'unavailable') return { status: 'unavailable' }
      if (use === 'use') {
        const found = await this.byId(known.value)
        if (found.status === 'unavailable') return found
        // Still this device's certificate? Otherwise the enrolment changed: ask the store.
        if (found.status === 'ok' && found.record.cert_fingerprints.includes(fingerprint)) return found
      }
    }
    if (!this.store.healthy && !this.withinGrace(now)) return { status: 'unavailable' }
    const gen = this.generation
    let record: DeviceRecord | null
    try {
      record = await this.fingerprintReads.run(`${gen}:${fingerprint}`, async () => await this.store.deviceByFingerprint(fingerprint))
    } catch {
      return { status: 'unavailable' }
    }
    if (gen === this.generation) {
      if (record === null) {
        this.fingerprints.delete(fingerprint)
        this.unknownFingerprints.set(fingerprint, { value: null, fetchedAt: now })
      } else {
        this.fingerprints.set(fingerprint, { value: record.id, fetchedAt: now })
        this.records.set(record.id, { value: record, fetchedAt: now })
      }
    }
    return record === null ? { status: 'none' } : { status: 'ok', record }
  }
}
