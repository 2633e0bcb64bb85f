/**
 * What Moatless keeps outside the process: sessions, single-use values (sign-in state,
 * handoff codes), small shared values (the assertion signing key) and change events.
 * Memory and Redis implement the same interface and pass the same contract suite
 * (test/store/contract.ts).
 */

export interface SessionRecord {
  id: string
  sub: string
  email?: string
  email_verified?: boolean
  name?: string
  groups: string[]
  /** ID-token claims (no tokens in here). */
  claims: Record<string, unknown>
  /** Sealed (AES-GCM) JSON of the IdP tokens; never stored in clear. */
  tokens: string
  created_at: number
  last_seen: number
  /** Absolute end: created_at + session.lifetime. */
  expires_at: number
  refreshed_at: number
}

/**
 * The device's own report of its state (`POST /.moatless/device/report`) or an MDM sync
 * (`moatless devices set`). Absent fields are unknown; `reported_at` dates the whole report,
 * and posture older than `device_trust.report_max_age` counts as unknown.
 */
export interface DevicePosture {
  /** Lowercase: macos, windows, linux, ... */
  os?: string
  os_version?: string
  disk_encrypted?: boolean
  screen_lock?: boolean
  firewall?: boolean
  /** ms since epoch (server time when the report was stored). */
  reported_at?: number
  /** Free-form signals a report carried besides the known ones. */
  extra?: Record<string, unknown>
}

/** A public key enrolled with `--public-key`: signs device tokens and posture reports. */
export interface DeviceKey {
  kty: 'EC' | 'OKP'
  crv: 'P-256' | 'Ed25519'
  x: string
  y?: string
  alg: 'ES256' | 'EdDSA'
  /** RFC 7638 thumbprint. */
  kid: string
}

/** One device in the inventory. Revoking keeps the record (status `revoked`): history stays. */
export interface DeviceRecord {
  id: string
  /** Email of the one user who may use it (compared case-insensitively). */
  owner: string
  /** Lowercase hex SHA-256 of the DER of each enrolled client certificate, no colons. */
  cert_fingerprints: string[]
  public_keys: DeviceKey[]
  managed: boolean
  corp_owned: boolean
  posture: DevicePosture
  status: 'active' | 'revoked'
  created_at: number
  updated_at: number
}

/** Change events every replica receives (Redis pub/sub, or in-process for memory). */
export type StoreEvent =
  | { type: 'session-revoked'; ids: string[] }
  | { type: 'session-updated'; ids: string[] }
  | { type: 'rules-changed'; version: string }
  | { type: 'device-changed'; id: string }

export interface Store {
  readonly kind: 'memory' | 'redis'
  /** True while the store answers; false during an outage. */
  readonly healthy: boolean
  /** When the store was last known to answer (ms since epoch); now while healthy. */
  lastHealthyAt (): number

  /** Stores the session; it lives until min(expires_at, last_seen + idleMs). */
  putSession (session: SessionRecord, idleMs: number): Promise<void>
  getSession (id: string): Promise<SessionRecord | null>
  /** Records activity; the record then lives until min(expires_at, lastSeen + idle). */
  touchSession (id: string, lastSeen: number, idleMs: number): Promise<void>
  deleteSession (id: string): Promise<boolean>
  listSessions (filter?: { user?: string }): Promise<SessionRecord[]>
  /** Deletes every session of a user (sub or email); returns the deleted ids. */
  deleteUserSessions (user: string): Promise<string[]>

  /** Stores a value that can be taken exactly once within ttlMs. */
  putOnce (kind: string, id: string, value: string, ttlMs: number): Promise<void>
  takeOnce (kind: string, id: string): Promise<string | null>

  /** Sets key to value unless it exists; returns what is stored afterwards. */
  setIfAbsent (key: string, value: string): Promise<string>
  get (key: string): Promise<string | null>

  /** Rule sets: stored by version (content hash), one active, a bounded history for rollback. */
  putRuleSet (version: string, body: string): Promise<void>
  getRuleSet (version: string): Promise<string | null>
  /** Makes `version` (already stored) the active set and records it in the history; publishes rules-changed. */
  activateRuleSet (version: string): Promise<void>
  /** Activates only when no rule set is active yet; true when it did. */
  seedRuleSet (version: string, body: string): Promise<boolean>
  activeRuleSetVersion (): Promise<string | null>
  /** Newest first. */
  ruleSetHistory (): Promise<{ version: string; activated_at: number }[]>

  /**
   * Device inventory. Every write publishes `device-changed` so that each replica's device
   * cache forgets the record at once. Records never expire: they exist because an operator
   * enrolled a device, and revoking keeps them.
   */
  putDevice (device: DeviceRecord): Promise<void>
  getDevice (id: string): Promise<DeviceRecord | null>
  /** The device one of whose `cert_fingerprints` is `fingerprint` (lowercase hex). */
  deviceByFingerprint (fingerprint: string): Promise<DeviceRecord | null>
  /** Every device, oldest first. */
  listDevices (): Promise<DeviceRecord[]>
  /**
   * Read-modify-write without lost updates (an agent's report racing an MDM sync): `change`
   * may run more than once and must not have side effects. Null when there is no such device.
   */
  updateDevice (id: string, change: (current: DeviceRecord) => DeviceRecord): Promise<DeviceRecord | null>
  /** Sets status `revoked` (the record stays); null when there is no such device. */
  revokeDevice (id: string): Promise<DeviceRecord | null>

  /**
   * Claims `kind:id` for `holder` unless someone already holds it (for ttlMs); returns the
   * holder afterwards. A device token's jti is claimed by the token's hash: the same token
   * seen by another replica is the same holder, a second token with that jti is not.
   */
  claimOnce (kind: string, id: string, holder: string, ttlMs: number): Promise<string>

  /** A short-lived exclusive lease (e.g. one IdP refresh per session across replicas). */
  acquireLease (name: string, owner: string, ttlMs: number): Promise<boolean>
  releaseLease (name: string, owner: string): Promise<void>

  /** Recent decisions (JSON), a capped stream for `rules apply --dry-run`. */
  addDecisionSamples (samples: string[]): Promise<void>
  recentDecisionSamples (count: number): Promise<string[]>

  publish (event: StoreEvent): Promise<void>
  /** Called for every event from any replica (including this one). */
  onEvent (listener: (event: StoreEvent) => void): void
  /** Called when the store comes back after an outage (caches must be revalidated). */
  onRecover (listener: () => void): void

  ping (): Promise<boolean>
  close (): Promise<void>
}

/** Time source, so contract tests can fast-forward. */
export interface Clock { now (): number }
export const systemClock: Clock = { now: () => Date.now() }

export const RULE_HISTORY_MAX = 20
export const DECISION_SAMPLES_MAX = 10_000

export function sessionTtl (s: SessionRecord, lastSeen: number, idleMs: number): number {
  return Math.max(1, Math.min(s.expires_at, lastSeen + idleMs) - lastSeen)
}
