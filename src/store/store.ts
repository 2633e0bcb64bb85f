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
