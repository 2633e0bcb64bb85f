import { EventEmitter } from 'node:events'
import type { Clock, DeviceRecord, SessionRecord, Store, StoreEvent } from './store.js'
import { DECISION_SAMPLES_MAX, RULE_HISTORY_MAX, systemClock } from './store.js'

interface Entry { value: string; expiresAt: number }

/**
 * In-process store: one replica only (sessions vanish with the process). The default when
 * `store:` is absent; serve logs a warning about it.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  readonly healthy = true
  private readonly sessions = new Map<string, { s: SessionRecord; expiresAt: number }>()
  private readonly values = new Map<string, Entry>()
  private readonly kv = new Map<string, string>()
  private readonly events = new EventEmitter()
  private readonly ruleSets = new Map<string, string>()
  private active: string | null = null
  private history: { version: string; activated_at: number }[] = []
  private readonly leases = new Map<string, { owner: string; until: number }>()
  private samples: string[] = []
  private readonly devices = new Map<string, DeviceRecord>()
  private readonly claims = new Map<string, Entry>()
  private sweeper: NodeJS.Timeout

  constructor (private readonly clock: Clock = systemClock) {
    this.events.setMaxListeners(0)
    this.sweeper = setInterval(() => this.sweep(), 60_000)
    this.sweeper.unref()
  }

  lastHealthyAt (): number { return this.clock.now() }

  private sweep (): void {
    const now = this.clock.now()
    for (const [k, v] of this.sessions) if (v.expiresAt <= now) this.sessions.delete(k)
    for (const [k, v] of this.values) if (v.expiresAt <= now) this.values.delete(k)
    for (const [k, v] of this.claims) if (v.expiresAt <= now) this.claims.delete(k)
  }

  async putSession (session: SessionRecord, idleMs: number): Promise<void> {
    this.sessions.set(session.id, { s: structuredClone(session), expiresAt: Math.min(session.expires_at, session.last_seen + idleMs) })
  }

  async getSession (id: string): Promise<SessionRecord | null> {
    const e = this.sessions.get(id)
    if (e === undefined) return null
    if (e.expiresAt <= this.clock.now()) { this.sessions.delete(id); return null }
    return structuredClone(e.s)
  }

  async touchSession (id: string, lastSeen: number, idleMs: number): Promise<void> {
    const e = this.sessions.get(id)
    if (e === undefined) return
    e.s.last_seen = lastSeen
    e.expiresAt = Math.min(e.s.expires_at, lastSeen + idleMs)
  }

  async deleteSession (id: string): Promise<boolean> {
    return this.sessions.delete(id)
  }

  async listSessions (filter?: { user?: string }): Promise<SessionRecord[]> {
    const now = this.clock.now()
    const out: SessionRecord[] = []
    for (const e of this.sessions.values()) {
      if (e.expiresAt <= now) continue
      if (filter?.user !== undefined && !matchesUser(e.s, filter.user)) continue
      out.push(structuredClone(e.s))
    }
    return out.sort((a, b) => a.created_at - b.created_at)
  }

  async deleteUserSessions (user: string): Promise<string[]> {
    const ids: string[] = []
    for (const [id, e] of this.sessions) {
      if (matchesUser(e.s, user)) { this.sessions.delete(id); ids.push(id) }
    }
    return ids
  }

  async putOnce (kind: string, id: string, value: string, ttlMs: number): Promise<void> {
    this.values.set(`${kind}:${id}`, { value, expiresAt: this.clock.now() + ttlMs })
  }

  async takeOnce (kind: string, id: string): Promise<string | null> {
    const key = `${kind}:${id}`
    const e = this.values.get(key)
    if (e === undefined) return null
    this.values.delete(key)
    return e.expiresAt > this.clock.now() ? e.value : null
  }

  async setIfAbsent (key: string, value: string): Promise<string> {
    const existing = this.kv.get(key)
    if (existing !== undefined) return existing
    this.kv.set(key, value)
    return value
  }

  async get (key: string): Promise<string | null> {
    return this.kv.get(key) ?? null
  }

  async putRuleSet (version: string, body: string): Promise<void> { this.ruleSets.set(version, body) }
  async getRuleSet (version: string): Promise<string | null> { return this.ruleSets.get(version) ?? null }
  async activateRuleSet (version: string): Promise<void> {
    if (!this.ruleSets.has(version)) throw new Error(`unknown rule set version ${version}`)
    this.active = version
    this.history = [{ version, activated_at: this.clock.now() }, ...this.history].slice(0, RULE_HISTORY_MAX)
    await this.publish({ type: 'rules-changed', version })
  }

  async seedRuleSet (version: string, body: string): Promise<boolean> {
    if (this.active !== null) return false
    this.ruleSets.set(version, body)
    await this.activateRuleSet(version)
    return true
  }

  async activeRuleSetVersion (): Promise<string | null> { return this.active }
  async ruleSetHistory (): Promise<{ version: string; activated_at: number }[]> { return this.history.map((h) => ({ ...h })) }

  async putDevice (device: DeviceRecord): Promise<void> {
    this.devices.set(device.id, structuredClone(device))
    await this.publish({ type: 'device-changed', id: device.id })
  }

  async getDevice (id: string): Promise<DeviceRecord | null> {
    const d = this.devices.get(id)
    return d === undefined ? null : structuredClone(d)
  }

  async deviceByFingerprint (fingerprint: string): Promise<DeviceRecord | null> {
    for (const d of this.devices.values()) if (d.cert_fingerprints.includes(fingerprint)) return structuredClone(d)
    return null
  }

  async listDevices (): Promise<DeviceRecord[]> {
    return [...this.devices.values()].map((d) => structuredClone(d)).sort((a, b) => a.created_at - b.created_at)
  }

  async updateDevice (id: string, change: (current: DeviceRecord) => DeviceRecord): Promise<DeviceRecord | null> {
    const d = this.devices.get(id)
    if (d === undefined) return null
    const next = change(structuredClone(d))
    if (next.id !== id) throw new Error('updateDevice: a change may not rename a device')
    await this.putDevice(next)
    return structuredClone(next)
  }

  async revokeDevice (id: string): Promise<DeviceRecord | null> {
    return await this.updateDevice(id, (d) => ({ ...d, status: 'revoked', updated_at: this.clock.now() }))
  }

  async claimOnce (kind: string, id: string, holder: string, ttlMs: number): Promise<string> {
    const key = `${kind}:${id}`
    const now = this.clock.now()
    const e = this.claims.get(key)
    if (e !== undefined && e.expiresAt > now) return e.value
    this.claims.set(key, { value: holder, expiresAt: now + ttlMs })
    return holder
  }

  async acquireLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now()
    const l = this.leases.get(name)
    if (l !== undefined && l.until > now) return false
    this.leases.set(name, { owner, until: now + ttlMs })
    return true
  }

  async releaseLease (name: string, owner: string): Promise<void> {
    if (this.leases.get(name)?.owner === owner) this.leases.delete(name)
  }

  async addDecisionSamples (samples: string[]): Promise<void> {
    this.samples.push(...samples)
    if (this.samples.length > DECISION_SAMPLES_MAX) this.samples = this.samples.slice(-DECISION_SAMPLES_MAX)
  }

  async recentDecisionSamples (count: number): Promise<string[]> { return this.samples.slice(-count).reverse() }

  async publish (event: StoreEvent): Promise<void> {
    // Asynchronous like Redis pub/sub, so callers never depend on synchronous delivery.
    setImmediate(() => this.events.emit('event', event))
  }

  onEvent (listener: (event: StoreEvent) => void): void { this.events.on('event', listener) }
  onRecover (_listener: () => void): void { /* never down */ }

  async ping (): Promise<boolean> { return true }

  async close (): Promise<void> {
    clearInterval(this.sweeper)
    this.events.removeAllListeners()
  }
}

export function matchesUser (s: SessionRecord, user: string): boolean {
  const u = user.toLowerCase()
  return s.sub.toLowerCase() === u || (s.email !== undefined && s.email.toLowerCase() === u)
}
