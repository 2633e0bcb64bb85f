import { Redis, Cluster, type RedisOptions } from 'ioredis'
import type { StoreConfig } from '../config/schema.js'
import type { DeviceRecord, SessionRecord, Store, StoreEvent } from './store.js'
import { DECISION_SAMPLES_MAX, RULE_HISTORY_MAX, sessionTtl } from './store.js'
import { matchesUser } from './memory.js'

type Client = Redis | Cluster

/**
 * Redis store shared by every replica. Commands fail fast while Redis is unreachable
 * (no offline queue, short command timeout) so that the proxy answers 503 quickly instead
 * of hanging; ioredis reconnects by itself and `onRecover` listeners then drop their caches.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const
  private client: Client
  private subscriber: Client
  private readonly prefix: string
  private readonly channel: string
  private isHealthy = false
  private healthyAt = 0
  private everReady = false
  private readonly eventListeners: ((e: StoreEvent) => void)[] = []
  private readonly recoverListeners: (() => void)[] = []
  private closed = false

  constructor (cfg: StoreConfig) {
    this.prefix = cfg.key_prefix
    this.channel = `${cfg.key_prefix}events`
    const common: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 2000,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(50 * times, 500),
      lazyConnect: true
    }
    this.client = createClient(cfg.redis, common)
    // The subscriber subscribes itself on every (re)connect: no queued commands that a close
    // could reject after nobody is listening.
    this.subscriber = createClient(cfg.redis, { ...common, autoResubscribe: false })
    this.subscriber.on('ready', () => { (this.subscriber as Redis).subscribe(this.channel).catch(() => {}) })
    this.client.on('ready', () => {
      const wasDown = this.everReady && !this.isHealthy
      this.isHealthy = true
      this.healthyAt = Date.now()
      this.everReady = true
      if (wasDown) for (const l of this.recoverListeners) l()
    })
    const down = (): void => {
      if (this.isHealthy) this.healthyAt = Date.now()
      this.isHealthy = false
    }
    this.client.on('close', down)
    this.client.on('end', down)
    this.client.on('error', () => { /* reported through `healthy`; ioredis reconnects */ })
    this.subscriber.on('error', () => {})
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return
      let event: StoreEvent
      try { event = JSON.parse(message) as StoreEvent } catch { return }
      for (const l of this.eventListeners) l(event)
    })
  }

  /** Connects both clients; resolves false (and keeps retrying in the background) if Redis is not up within timeoutMs. */
  async connect (timeoutMs = 3000): Promise<boolean> {
    this.subscriber.connect().catch(() => {})
    const ready = new Promise<boolean>((resolve) => {
      if (this.isHealthy) { resolve(true); return }
      this.client.once('ready', () => resolve(true))
      setTimeout(() => resolve(this.isHealthy), timeoutMs).unref()
    })
    this.client.connect().catch(() => {})
    return await ready
  }

  get healthy (): boolean { return this.isHealthy }
  lastHealthyAt (): number { return this.isHealthy ? Date.now() : this.healthyAt }

  private k (...parts: string[]): string { return this.prefix + parts.join(':') }

  async putSession (s: SessionRecord, idleMs: number): Promise<void> {
    const ttl = sessionTtl(s, s.last_seen, idleMs)
    const life = Math.max(1, s.expires_at - Date.now())
    const p = this.client.pipeline()
    p.set(this.k('session', s.id), JSON.stringify(s), 'PX', ttl)
    for (const u of userKeys(s)) {
      p.sadd(this.k('user', u), s.id)
      p.pexpire(this.k('user', u), life, 'GT')
      p.pexpire(this.k('user', u), life, 'NX')
    }
    await execOrThrow(p)
  }

  async getSession (id: string): Promise<SessionRecord | null> {
    const v = await this.client.get(this.k('session', id))
    return v === null ? null : JSON.parse(v) as SessionRecord
  }

  async touchSession (id: string, lastSeen: number, idleMs: number): Promise<void> {
    const s = await this.getSession(id)
    if (s === null) return
    s.last_seen = lastSeen
    // XX: never resurrect a session that was deleted between the GET and this SET.
    await this.client.set(this.k('session', id), JSON.stringify(s), 'PX', sessionTtl(s, lastSeen, idleMs), 'XX')
  }

  async deleteSession (id: string): Promise<boolean> {
    const s = await this.getSession(id)
    const n = await this.client.del(this.k('session', id))
    if (s !== null) for (const u of userKeys(s)) await this.client.srem(this.k('user', u), id)
    return n > 0
  }

  private async getMany (ids: string[]): Promise<SessionRecord[]> {
    if (ids.length === 0) return []
    const p = this.client.pipeline()
    for (const id of ids) p.get(this.k('session', id))
    const res = await execOrThrow(p)
    const out: SessionRecord[] = []
    for (const [, v] of res) if (typeof v === 'string') out.push(JSON.parse(v) as SessionRecord)
    return out
  }

  async listSessions (filter?: { user?: string }): Promise<SessionRecord[]> {
    let ids: string[]
    if (filter?.user !== undefined) {
      ids = await this.client.smembers(this.k('user', filter.user.toLowerCase()))
    } else {
      ids = []
      const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client]
      const start = this.k('session', '')
      for (const node of nodes) {
        let cursor = '0'
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(start)}*`, 'COUNT', 500)
          cursor = next
          for (const key of keys) ids.push(key.slice(start.length))
        } while (cursor !== '0')
      }
    }
    const sessions = await this.getMany([...new Set(ids)])
    return sessions
      .filter((s) => filter?.user === undefined || matchesUser(s, filter.user))
      .sort((a, b) => a.created_at - b.created_at)
  }

  async deleteUserSessions (user: string): Promise<string[]> {
    const sessions = await this.listSessions({ user })
    if (sessions.length === 0) return []
    const p = this.client.pipeline()
    for (const s of sessions) {
      p.del(this.k('session', s.id))
      for (const u of userKeys(s)) p.srem(this.k('user', u), s.id)
    }
    await execOrThrow(p)
    return sessions.map((s) => s.id)
  }

  async putOnce (kind: string, id: string, value: string, ttlMs: number): Promise<void> {
    await this.client.set(this.k('once', kind, id), value, 'PX', ttlMs)
  }

  async takeOnce (kind: string, id: string): Promise<string | null> {
    return await this.client.getdel(this.k('once', kind, id))
  }

  async setIfAbsent (key: string, value: string): Promise<string> {
    const ok = await this.client.set(this.k('kv', key), value, 'NX')
    if (ok === 'OK') return value
    const v = await this.client.get(this.k('kv', key))
    return v ?? value
  }

  async get (key: string): Promise<string | null> {
    return await this.client.get(this.k('kv', key))
  }

  async putRuleSet (version: string, body: string): Promise<void> {
    await this.client.set(this.k('rules', 'v', version), body)
  }

  async getRuleSet (version: string): Promise<string | null> {
    return await this.client.get(this.k('rules', 'v', version))
  }

  async activateRuleSet (version: string): Promise<void> {
    if (await this.client.exists(this.k('rules', 'v', version)) === 0) throw new Error(`unknown rule set version ${version}`)
    await this.activate(version)
  }

  private async activate (version: string): Promise<void> {
    const entry = JSON.stringify({ version, activated_at: Date.now() })
    const res = await this.client.multi()
      .set(this.k('rules', 'active'), version)
      .lpush(this.k('rules', 'history'), entry)
      .ltrim(this.k('rules', 'history'), 0, RULE_HISTORY_MAX - 1)
      .exec()
    if (res === null) throw new Error('redis transaction aborted')
    for (const [err] of res) if (err !== null) throw err
    await this.pruneRuleSets()
    await this.publish({ type: 'rules-changed', version })
  }

  /** Keeps only the rule set bodies the history still names: nothing grows forever. */
  private async pruneRuleSets (): Promise<void> {
    const kept = new Set((await this.ruleSetHistory()).map((h) => h.version))
    const prefix = this.k('rules', 'v', '')
    let cursor = '0'
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client]
    for (const node of nodes) {
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 200)
        cursor = next
        for (const key of keys) if (!kept.has(key.slice(prefix.length))) await this.client.del(key)
      } while (cursor !== '0')
    }
  }

  async seedRuleSet (version: string, body: string): Promise<boolean> {
    await this.putRuleSet(version, body)
    const claimed = await this.client.set(this.k('rules', 'seeded'), version, 'NX')
    if (claimed !== 'OK' || await this.activeRuleSetVersion() !== null) return false
    await this.activate(version)
    return true
  }

  async activeRuleSetVersion (): Promise<string | null> {
    return await this.client.get(this.k('rules', 'active'))
  }

  async ruleSetHistory (): Promise<{ version: string; activated_at: number }[]> {
    const list = await this.client.lrange(this.k('rules', 'history'), 0, RULE_HISTORY_MAX - 1)
    return list.map((e) => JSON.parse(e) as { version: string; activated_at: number })
  }

  // Devices: `device:<id>` (the record, JSON), `device-fp:<sha256>` (→ id) and the set
  // `devices` (every id, for listing without SCAN). None of them expires: there is one record
  // per enrolled device, and only an operator adds devices, so the key count is bounded by
  // the inventory (about two keys per device plus one per certificate). Each key is written on
  // its own (no multi-key transactions), so this works unchanged on Redis Cluster; a lookup by
  // fingerprint re-checks the record, so an index entry left behind by a crash is harmless.

  async putDevice (device: DeviceRecord): Promise<void> {
    const before = await this.getDevice(device.id)
    await this.client.set(this.k('device', device.id), JSON.stringify(device))
    await this.reindexDevice(before, device)
    await this.publish({ type: 'device-changed', id: device.id })
  }

  private async reindexDevice (before: DeviceRecord | null, after: DeviceRecord): Promise<void> {
    const ops: Promise<unknown>[] = [this.client.sadd(this.k('devices'), after.id)]
    for (const fp of after.cert_fingerprints) ops.push(this.client.set(this.k('device-fp', fp), after.id))
    for (const fp of before?.cert_fingerprints ?? []) {
      if (after.cert_fingerprints.includes(fp)) continue
      // Only our own entry: the certificate may have been enrolled for another device since.
      ops.push(this.client.eval(COMPARE_AND_DELETE, 1, this.k('device-fp', fp), after.id))
    }
    await Promise.all(ops)
  }

  async getDevice (id: string): Promise<DeviceRecord | null> {
    const v = await this.client.get(this.k('device', id))
    return v === null ? null : JSON.parse(v) as DeviceRecord
  }

  async deviceByFingerprint (fingerprint: string): Promise<DeviceRecord | null> {
    const id = await this.client.get(this.k('device-fp', fingerprint))
    if (id === null) return null
    const d = await this.getDevice(id)
    return d !== null && d.cert_fingerprints.includes(fingerprint) ? d : null
  }

  async listDevices (): Promise<DeviceRecord[]> {
    const ids = await this.client.smembers(this.k('devices'))
    const found = await Promise.all(ids.map((id) => this.getDevice(id)))
    return found.filter((d): d is DeviceRecord => d !== null).sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1))
  }

  async updateDevice (id: string, change: (current: DeviceRecord) => DeviceRecord): Promise<DeviceRecord | null> {
    // Optimistic: write only if the record is still what `change` saw (compare-and-set in Lua,
    // one key, so no WATCH on the shared connection and no cross-slot transaction).
    for (let attempt = 0; attempt < 20; attempt++) {
      const raw = await this.client.get(this.k('device', id))
      if (raw === null) return null
      const before = JSON.parse(raw) as DeviceRecord
      const next = change(JSON.parse(raw) as DeviceRecord)
      if (next.id !== id) throw new Error('updateDevice: a change may not rename a device')
      const written = await this.client.eval(COMPARE_AND_SET, 1, this.k('device', id), raw, JSON.stringify(next))
      if (written === 1) {
        await this.reindexDevice(before, next)
        await this.publish({ type: 'device-changed', id })
        return next
      }
    }
    throw new Error(`device ${id} kept changing underneath; update abandoned`)
  }

  async revokeDevice (id: string): Promise<DeviceRecord | null> {
    return await this.updateDevice(id, (d) => ({ ...d, status: 'revoked', updated_at: Date.now() }))
  }

  async claimOnce (kind: string, id: string, holder: string, ttlMs: number): Promise<string> {
    const v = await this.client.eval(CLAIM, 1, this.k('claim', kind, id), holder, Math.max(1, Math.ceil(ttlMs)))
    return String(v)
  }

  async acquireLease (name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.client.set(this.k('lease', name), owner, 'PX', ttlMs, 'NX')) === 'OK'
  }

  async releaseLease (name: string, owner: string): Promise<void> {
    // Delete only our own lease (compare-and-delete, atomically).
    await this.client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end", 1, this.k('lease', name), owner)
  }

  async addDecisionSamples (samples: string[]): Promise<void> {
    if (samples.length === 0) return
    // One stream entry per batch: one command per flush, however busy the replica is.
    await this.client.xadd(this.k('decisions'), 'MAXLEN', '~', Math.ceil(DECISION_SAMPLES_MAX / 100), '*', 'batch', JSON.stringify(samples))
  }

  async recentDecisionSamples (count: number): Promise<string[]> {
    const out: string[] = []
    let end = '+'
    while (out.length < count) {
      const entries = await this.client.xrevrange(this.k('decisions'), end, '-', 'COUNT', 20)
      if (entries.length === 0) break
      for (const [id, fields] of entries) {
        if (id === end) continue
        const batch = JSON.parse(fields[1] ?? '[]') as string[]
        for (let i = batch.length - 1; i >= 0 && out.length < count; i--) out.push(batch[i] as string)
      }
      const lastId = entries[entries.length - 1]?.[0]
      if (lastId === undefined || lastId === end) break
      end = lastId
      if (entries.length < 20) break
    }
    return out
  }

  async publish (event: StoreEvent): Promise<void> {
    await this.client.publish(this.channel, JSON.stringify(event))
  }

  onEvent (listener: (event: StoreEvent) => void): void { this.eventListeners.push(listener) }
  onRecover (listener: () => void): void { this.recoverListeners.push(listener) }

  async ping (): Promise<boolean> {
    try { return (await this.client.ping()) === 'PONG' } catch { return false }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.client.disconnect()
    this.subscriber.disconnect()
  }
}

const COMPARE_AND_DELETE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"
const COMPARE_AND_SET = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end"
const CLAIM = "local v = redis.call('GET', KEYS[1]) if v then return v end redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return ARGV[1]"

/** Index keys are lowercase: lookups by sub or email are case-insensitive on every store. */
function userKeys (s: SessionRecord): string[] {
  const keys = [s.sub.toLowerCase()]
  if (s.email !== undefined) keys.push(s.email.toLowerCase())
  return keys
}

function escapeGlob (s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

async function execOrThrow (p: ReturnType<Client['pipeline']>): Promise<[Error | null, unknown][]> {
  const res = await p.exec()
  if (res === null) throw new Error('redis pipeline aborted')
  for (const [err] of res) if (err !== null) throw err
  return res
}

function createClient (redis: StoreConfig['redis'], opts: RedisOptions): Client {
  if (typeof redis === 'string') return new Redis(redis, opts)
  if ('sentinels' in redis) {
    return new Redis({ ...opts, sentinels: redis.sentinels, name: redis.name, password: redis.password, db: redis.db })
  }
  return new Cluster(redis.cluster, { redisOptions: { ...opts, password: redis.password }, enableOfflineQueue: opts.enableOfflineQueue, lazyConnect: true })
}
