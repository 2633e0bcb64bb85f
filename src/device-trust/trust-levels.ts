/**
 * Grading: from a device record to a trust level (`device_trust.levels`, lowest first). Each
 * level is checked on its own and the device gets the highest one whose requirements all
 * hold; rank 0 is `none`. Pure: record and time in, DeviceContext out.
 *
 * Posture (disk encryption, screen lock, firewall, OS) older than `report_max_age` is unknown,
 * and unknown never satisfies a requirement. `managed` and `corp_owned` are inventory
 * attributes set by IT, so they do not age. A requirement written as `false` asks for nothing.
 */
import type { DeviceContext, DeviceShortfall } from '../context.js'
import type { LevelRequirement } from '../config/schema.js'
import type { DeviceRecord } from '../store/index.js'

export interface TrustLevelConfig { name: string; require: LevelRequirement }

const REPORT = 'then run `moatless agent report` on this device.'
const RUN_AGENT = 'Run the Moatless device agent on this device (`moatless agent report`).'

const OS_NAMES: Record<string, string> = { macos: 'macOS', windows: 'Windows', linux: 'Linux', ios: 'iOS', ipados: 'iPadOS', android: 'Android', chromeos: 'ChromeOS' }
export function osName (os: string): string { return OS_NAMES[os] ?? os }

/** Dotted numeric versions: `14.5` < `14.10`; `6.1.0-18-amd64` reads as 6.1.0. Null when not a version. */
export function parseVersion (v: string): number[] | null {
  const parts = v.trim().split('.')
  const out: number[] = []
  for (const p of parts) {
    const m = /^\d+/.exec(p)
    if (m === null) break
    out.push(Number(m[0]))
    if (m[0].length !== p.length) break
  }
  return out.length === 0 ? null : out
}

export function compareVersions (a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

function age (ms: number): string {
  const minutes = Math.floor(ms / 60_000)
  if (minutes < 120) return `${minutes} minute${minutes === 1 ? '' : 's'}`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours} hours`
  return `${Math.floor(hours / 24)} days`
}

/** Whether the posture is current; when not, the one shortfall that stands for every posture check. */
function currentPosture (r: DeviceRecord, now: number, maxAge: number): { fresh: boolean; stale: DeviceShortfall | null } {
  const at = r.posture.reported_at
  if (at === undefined) {
    return { fresh: false, stale: { reason: 'no posture report yet: run the agent (moatless agent report)', remedy: RUN_AGENT } }
  }
  if (now - at > maxAge) {
    return { fresh: false, stale: { reason: `posture report is ${age(now - at)} old: run the agent (moatless agent report)`, remedy: RUN_AGENT } }
  }
  return { fresh: true, stale: null }
}

interface CompiledLevel {
  name: string
  rank: number
  /** What the device lacks for this level (empty: it qualifies). */
  check (r: DeviceRecord, fresh: boolean, stale: DeviceShortfall | null): DeviceShortfall[]
}

type Check = (r: DeviceRecord, fresh: boolean, stale: DeviceShortfall | null) => DeviceShortfall | null

function postureCheck (key: 'disk_encrypted' | 'screen_lock' | 'firewall', off: DeviceShortfall, unknown: string): Check {
  return (r, fresh, stale) => {
    if (!fresh) return stale
    const v = r.posture[key]
    if (v === true) return null
    return v === false ? off : { reason: unknown, remedy: RUN_AGENT }
  }
}

function osMinCheck (min: Record<string, string>): Check {
  const wanted = Object.entries(min).map(([os, v]) => ({ os: os.toLowerCase(), min: v, version: parseVersion(v) ?? [0] }))
  const allowed = wanted.map((w) => `${osName(w.os)} ${w.min}+`).join(', ')
  return (r, fresh, stale) => {
    if (!fresh) return stale
    const os = r.posture.os
    if (os === undefined) return { reason: 'operating system unknown', remedy: RUN_AGENT }
    const w = wanted.find((x) => x.os === os)
    if (w === undefined) return { reason: `${osName(os)} is not an allowed operating system here (allowed: ${allowed})`, remedy: `Use a device running ${wanted.map((x) => osName(x.os)).join(' or ')}.` }
    const version = r.posture.os_version
    if (version === undefined) return { reason: `${osName(os)} version unknown`, remedy: RUN_AGENT }
    const parsed = parseVersion(version)
    if (parsed === null) return { reason: `${osName(os)} version ${JSON.stringify(version)} is not a version number`, remedy: RUN_AGENT }
    if (compareVersions(parsed, w.version) >= 0) return null
    return { reason: `${osName(os)} ${version} is older than the required ${w.min}`, remedy: `Update ${osName(os)} to ${w.min} or later, ${REPORT}` }
  }
}

function compileLevel (level: TrustLevelConfig, rank: number): CompiledLevel {
  const req = level.require
  const checks: Check[] = []
  // `enrolled`: only active records of the inventory are graded at all.
  if (req.managed === true) {
    checks.push((r) => r.managed ? null : { reason: 'not managed by IT', remedy: 'Ask IT to put this device under device management (MDM).' })
  }
  if (req.corp_owned === true) {
    checks.push((r) => r.corp_owned ? null : { reason: 'not a company-owned device', remedy: 'Use a company-owned device.' })
  }
  if (req.disk_encrypted === true) {
    checks.push(postureCheck('disk_encrypted', { reason: 'disk encryption is off', remedy: `Turn on disk encryption (FileVault / BitLocker / LUKS), ${REPORT}` }, 'disk encryption status unknown'))
  }
  if (req.screen_lock === true) {
    checks.push(postureCheck('screen_lock', { reason: 'screen lock is off', remedy: `Turn on the screen lock (a password after sleep or idle), ${REPORT}` }, 'screen lock status unknown'))
  }
  if (req.firewall === true) {
    checks.push(postureCheck('firewall', { reason: 'firewall is off', remedy: `Turn on the firewall, ${REPORT}` }, 'firewall status unknown'))
  }
  if (req.os_min !== undefined && Object.keys(req.os_min).length > 0) checks.push(osMinCheck(req.os_min))
  return {
    name: level.name,
    rank,
    check (r, fresh, stale) {
      const out: DeviceShortfall[] = []
      for (const c of checks) {
        const s = c(r, fresh, stale)
        if (s !== null && !out.some((x) => x.reason === s.reason)) out.push(s)
      }
      return out
    }
  }
}

export class TrustLevels {
  private readonly levels: CompiledLevel[]

  constructor (levels: readonly TrustLevelConfig[], private readonly reportMaxAgeMs: number) {
    this.levels = levels.map((l, i) => compileLevel(l, i + 1))
  }

  get names (): string[] { return this.levels.map((l) => l.name) }

  /**
   * The device's level and, for every level above it, what it lacks. `validUntil`: when the
   * grade may change by time alone (the posture report goes stale).
   */
  grade (r: DeviceRecord, now: number): { device: DeviceContext; validUntil: number } {
    const { fresh, stale } = currentPosture(r, now, this.reportMaxAgeMs)
    let trust = 'none'
    let rank = 0
    const unmet = new Map<string, DeviceShortfall[]>()
    for (const level of this.levels) {
      const lacks = level.check(r, fresh, stale)
      if (lacks.length === 0) { trust = level.name; rank = level.rank } else unmet.set(level.name, lacks)
    }
    const shortfalls: Record<string, readonly DeviceShortfall[]> = {}
    const reasons: string[] = []
    for (const level of this.levels) {
      if (level.rank <= rank) continue
      const lacks = unmet.get(level.name) ?? []
      shortfalls[level.name] = lacks
      for (const s of lacks) if (!reasons.includes(s.reason)) reasons.push(s.reason)
    }
    const at = r.posture.reported_at
    const validUntil = fresh && at !== undefined ? at + this.reportMaxAgeMs + 1 : Number.POSITIVE_INFINITY
    return { device: Object.freeze({ id: r.id, trust, trustRank: rank, reasons, shortfalls }), validUntil }
  }

  /** No trusted device, for a stated reason (revoked, someone else's, unknown certificate, ...). */
  untrusted (shortfall: DeviceShortfall): DeviceContext {
    const shortfalls: Record<string, readonly DeviceShortfall[]> = {}
    for (const l of this.levels) shortfalls[l.name] = [shortfall]
    return Object.freeze({ id: null, trust: 'none', trustRank: 0, reasons: [shortfall.reason], shortfalls })
  }
}
