/**
 * Which device a request comes from, and how far it is trusted. Evidence, first that names a
 * device wins:
 *
 *   1. a client certificate: from a trusted proxy's `X-Client-Cert` (verified here), else the
 *      one our own TLS listener verified; looked up by fingerprint;
 *   2. a device token, `X-Moatless-Device: <JWT>` signed by an enrolled device key.
 *
 * Then: revoked → none; owner ≠ signed-in user → none ("this device belongs to someone
 * else"); else the grade of its record (trust-levels.ts). A presented credential that names no
 * device is trust `none` with the reason, never an error. When the store must be asked and
 * cannot answer (beyond store_outage_grace), the answer is `unavailable`: the request gets
 * 503, because a guess could let a `deny: { device: ... }` rule miss.
 *
 * Steady state needs no store round trip: records are cached (inventory.ts), grades are cached
 * per record until the posture report goes stale, and a verified device token is remembered
 * until it expires. Only a token's first sighting asks the store, to claim its jti.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { NO_DEVICE, type DeviceContext, type DeviceShortfall, type Identity } from '../context.js'
import type { DeviceRecord, Store } from '../store/index.js'
import type { ClientCertificates } from './client-cert.js'
import { CLOCK_SKEW_S, peek, verifyDeviceJwt, type Unverified } from './device-jwt.js'
import type { DeviceInventory } from './inventory.js'
import type { TrustLevels } from './trust-levels.js'

export interface DeviceEvidence {
  /** Fingerprint of the client certificate our TLS listener verified against client_ca. */
  socketFingerprint: string | null
  /** `X-Client-Cert` from a trusted proxy (undefined from anyone else). */
  forwardedCert: string | undefined
  /** `X-Moatless-Device`. */
  token: string | undefined
}

export type DeviceAnswer = DeviceContext | 'unavailable'

type TokenLookup = { status: 'ok'; record: DeviceRecord } | { status: 'invalid'; reason: string } | { status: 'unavailable' }

interface VerifiedToken { id: string; validUntil: number; record: DeviceRecord }

const REVOKED: DeviceShortfall = { reason: 'this device was revoked', remedy: 'Use another enrolled device; ask IT if this one should not have been revoked.' }
const FOREIGN: DeviceShortfall = { reason: 'this device belongs to someone else', remedy: 'Use your own enrolled device, or sign in as the person this device is enrolled for.' }
const UNENROLLED: DeviceShortfall = { reason: 'this device\'s certificate is not enrolled', remedy: 'Ask IT to enroll this device (`moatless devices enroll`).' }
const GRADE_TTL_MS = 60_000

export interface DeviceTrustOptions {
  store: Store
  inventory: DeviceInventory
  levels: TrustLevels
  certificates: ClientCertificates | null
  /** authenticate.url: the audience of device tokens (with or without its trailing slash). */
  audience: string
  outageGraceMs: number
  now?: () => number
}

export class DeviceTrust {
  /** Verified tokens by their text, bounded by bytes (a token may be up to 8 KiB). */
  private readonly tokens = new LRUCache<string, VerifiedToken>({ max: 100_000, maxSize: 32 * 1024 * 1024, sizeCalculation: (_v, k) => k.length + 128 })
  private readonly grades = new WeakMap<DeviceRecord, { device: DeviceContext; until: number }>()
  private readonly revoked: DeviceContext
  private readonly foreign: DeviceContext
  private readonly unenrolled: DeviceContext
  private readonly now: () => number
  private readonly audiences: string[]

  constructor (private readonly opts: DeviceTrustOptions) {
    this.now = opts.now ?? Date.now
    const base = opts.audience.replace(/\/+$/, '')
    this.audiences = [base, base + '/']
    this.revoked = opts.levels.untrusted(REVOKED)
    this.foreign = opts.levels.untrusted(FOREIGN)
    this.unenrolled = opts.levels.untrusted(UNENROLLED)
  }

  get levels (): TrustLevels { return this.opts.levels }
  get inventory (): DeviceInventory { return this.opts.inventory }
  get certificates (): ClientCertificates | null { return this.opts.certificates }

  async identify (evidence: DeviceEvidence, identity: Identity): Promise<DeviceAnswer> {
    let failure: DeviceContext | null = null
    let fingerprint = evidence.socketFingerprint
    if (evidence.forwardedCert !== undefined && this.opts.certificates !== null) {
      const fwd = this.opts.certificates.fromHeader(evidence.forwardedCert, this.now())
      // From a trusted proxy, the connection's own certificate (if any) is the proxy's.
      fingerprint = fwd.ok ? fwd.fingerprint : null
      if (!fwd.ok) failure = this.opts.levels.untrusted({ reason: `the device certificate was not accepted (${fwd.reason})`, remedy: 'Ask IT to check this device\'s certificate.' })
    }
    if (fingerprint !== null) {
      const found = await this.opts.inventory.byFingerprint(fingerprint)
      if (found.status === 'unavailable') return 'unavailable'
      if (found.status === 'ok') return this.contextFor(found.record, identity)
      failure ??= this.unenrolled
    }
    if (evidence.token !== undefined) {
      const found = await this.fromToken(evidence.token)
      if (found.status === 'unavailable') return 'unavailable'
      if (found.status === 'ok') return this.contextFor(found.record, identity)
      failure ??= this.opts.levels.untrusted({ reason: `the device token was rejected (${found.reason})`, remedy: 'Run the Moatless device agent again: it sends a fresh device token.' })
    }
    return failure ?? NO_DEVICE
  }

  /** The trust of this record for this user, now. */
  contextFor (record: DeviceRecord, identity: Identity | null): DeviceContext {
    if (record.status !== 'active') return this.revoked
    if (!ownedBy(record, identity)) return this.foreign
    const now = this.now()
    const cached = this.grades.get(record)
    if (cached !== undefined && now < cached.until) return cached.device
    const { device, validUntil } = this.opts.levels.grade(record, now)
    this.grades.set(record, { device, until: Math.min(validUntil, now + GRADE_TTL_MS) })
    return device
  }

  /**
   * Grades a device again from the store (an open websocket after `device-changed`). When the
   * store cannot answer, the device keeps its id but loses its trust: deny rules naming it
   * still match, allow rules needing a level no longer do.
   */
  async recheck (id: string, identity: Identity | null): Promise<DeviceContext> {
    const found = await this.opts.inventory.byId(id)
    if (found.status === 'ok') return this.contextFor(found.record, identity)
    if (found.status === 'none') return this.opts.levels.untrusted({ reason: 'this device is no longer enrolled', remedy: 'Ask IT to enroll this device (`moatless devices enroll`).' })
    return Object.freeze({ id, trust: 'none', trustRank: 0, reasons: ['the device inventory cannot be reached'] })
  }

  /** The device behind an `X-Moatless-Device` token. */
  private async fromToken (token: string): Promise<TokenLookup> {
    const now = this.now()
    const seen = this.tokens.get(token)
    if (seen !== undefined && now < seen.validUntil) {
      const found = await this.opts.inventory.byId(seen.id)
      if (found.status === 'unavailable') return found
      if (found.status === 'none') return { status: 'invalid', reason: 'unknown device' }
      if (found.record === seen.record) return found
      // The record changed (maybe its keys): the signature must still verify. The jti is ours already.
      const claimed = peek(token)
      const check = claimed.ok ? await this.verify(token, claimed, found.record, now) : { status: 'invalid' as const, reason: claimed.reason }
      if (check.status !== 'ok') { this.tokens.delete(token); return check }
      seen.record = found.record
      return found
    }
    if (seen !== undefined) this.tokens.delete(token)

    const claimed = peek(token)
    if (!claimed.ok) return { status: 'invalid', reason: claimed.reason }
    const found = await this.opts.inventory.byId(claimed.iss)
    if (found.status === 'unavailable') return found
    if (found.status === 'none') return { status: 'invalid', reason: 'unknown device' }
    const verified = await this.verify(token, claimed, found.record, now)
    if (verified.status !== 'ok') return verified
    const { exp, jti } = verified
    const holder = createHash('sha256').update(token).digest('base64url')
    const validUntil = (exp + CLOCK_SKEW_S) * 1000
    let current: string
    try {
      current = await this.opts.store.claimOnce('device-jti', `${found.record.id}:${jti}`, holder, validUntil - now)
    } catch {
      // Store down: within the grace the device (verified before the outage) is served on
      // its signature alone; replay protection waits for the store.
      if (now - this.opts.store.lastHealthyAt() > this.opts.outageGraceMs) return { status: 'unavailable' }
      current = holder
    }
    // Another token with this jti was seen first: a replay (the same token on another replica is fine).
    if (current !== holder) return { status: 'invalid', reason: 'the token id (jti) was already used' }
    this.tokens.set(token, { id: found.record.id, validUntil, record: found.record })
    return found
  }

  private async verify (token: string, claimed: Extract<Unverified, { ok: true }>, record: DeviceRecord, now: number): Promise<{ status: 'ok'; exp: number; jti: string } | { status: 'invalid'; reason: string }> {
    if (claimed.payload.sub !== claimed.iss) return { status: 'invalid', reason: 'sub must equal iss (the device id)' }
    const jti = claimed.payload.jti
    if (typeof jti !== 'string' || jti === '' || jti.length > 256) return { status: 'invalid', reason: 'the token has no jti' }
    const v = await verifyDeviceJwt(token, claimed, record, { audience: this.audiences, now, subject: true })
    if (!v.ok) return { status: 'invalid', reason: v.reason }
    return { status: 'ok', exp: v.payload.exp, jti }
  }
}

/** The signed-in user is the device's owner: same email (case-insensitive), not marked unverified. */
export function ownedBy (record: DeviceRecord, identity: Identity | null): boolean {
  const email = identity?.email
  if (email === undefined || identity?.email_verified === false) return false
  return email.toLowerCase() === record.owner.toLowerCase()
}
