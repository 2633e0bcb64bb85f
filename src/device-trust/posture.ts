/**
 * Posture as it arrives: the `posture` claim of a device's signed report, or the KEY=VALUE
 * settings of `moatless devices set` (an MDM sync). Both count as a fresh report.
 *
 * `managed` and `corp_owned` are the inventory's attributes, set by IT: a device's own report
 * cannot claim them (a report carrying them keeps them under `extra`, where no level reads).
 */
import type { DevicePosture, DeviceRecord } from '../store/index.js'

const BOOLEAN_POSTURE = ['disk_encrypted', 'screen_lock', 'firewall'] as const
const STRING_POSTURE = ['os', 'os_version'] as const
/** What `moatless devices set` may change. */
export const SETTABLE_KEYS = ['managed', 'corp_owned', 'os', 'os_version', 'disk_encrypted', 'screen_lock', 'firewall'] as const
export type SettableKey = typeof SETTABLE_KEYS[number]
export type Setting = { key: 'managed' | 'corp_owned' | 'disk_encrypted' | 'screen_lock' | 'firewall'; value: boolean } | { key: 'os' | 'os_version'; value: string }

const MAX_STRING = 128

export class SettingError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'SettingError'
  }
}

/** `disk_encrypted=true` → a setting; a clear error for an unknown key or a bad value. */
export function parseSetting (arg: string): Setting {
  const eq = arg.indexOf('=')
  if (eq <= 0) throw new SettingError(`expected KEY=VALUE, got ${JSON.stringify(arg)} (keys: ${SETTABLE_KEYS.join(', ')})`)
  const key = arg.slice(0, eq)
  const raw = arg.slice(eq + 1)
  if (!(SETTABLE_KEYS as readonly string[]).includes(key)) {
    throw new SettingError(`unknown key ${JSON.stringify(key)} (keys: ${SETTABLE_KEYS.join(', ')})`)
  }
  if (key === 'os' || key === 'os_version') {
    if (raw.trim() === '' || raw.length > MAX_STRING || /[\u0000-\u001f\u007f]/.test(raw)) {
      throw new SettingError(`bad value for ${key}: expected a non-empty text of at most ${MAX_STRING} characters`)
    }
    return { key, value: key === 'os' ? raw.trim().toLowerCase() : raw.trim() }
  }
  if (raw !== 'true' && raw !== 'false') throw new SettingError(`bad value for ${key}: expected true or false, got ${JSON.stringify(raw)}`)
  return { key: key as 'managed' | 'corp_owned' | 'disk_encrypted' | 'screen_lock' | 'firewall', value: raw === 'true' }
}

/** The record after the settings; the posture counts as reported now. */
export function applySettings (record: DeviceRecord, settings: readonly Setting[], now: number): DeviceRecord {
  const next: DeviceRecord = { ...record, posture: { ...record.posture }, updated_at: now }
  for (const s of settings) {
    switch (s.key) {
      case 'managed': next.managed = s.value; break
      case 'corp_owned': next.corp_owned = s.value; break
      case 'os': next.posture.os = s.value; break
      case 'os_version': next.posture.os_version = s.value; break
      default: next.posture[s.key] = s.value
    }
  }
  next.posture.reported_at = now
  return next
}

export type PostureClaim = { ok: true; posture: DevicePosture } | { ok: false; reason: string }

/**
 * The `posture` claim of a report: known fields type-checked, everything else kept under
 * `extra`. A report is a snapshot: what it leaves out becomes unknown.
 */
export function parsePostureClaim (claim: unknown, now: number): PostureClaim {
  if (claim === undefined) return { ok: false, reason: 'the report has no posture claim' }
  if (claim === null || typeof claim !== 'object' || Array.isArray(claim)) return { ok: false, reason: 'posture must be a JSON object' }
  const posture: DevicePosture = {}
  const extra: [string, unknown][] = []
  for (const [key, value] of Object.entries(claim as Record<string, unknown>)) {
    if ((BOOLEAN_POSTURE as readonly string[]).includes(key)) {
      if (value === null) continue
      if (typeof value !== 'boolean') return { ok: false, reason: `posture.${key} must be true or false` }
      posture[key as typeof BOOLEAN_POSTURE[number]] = value
    } else if ((STRING_POSTURE as readonly string[]).includes(key)) {
      if (value === null) continue
      if (typeof value !== 'string' || value.length > MAX_STRING) return { ok: false, reason: `posture.${key} must be a string of at most ${MAX_STRING} characters` }
      posture[key as typeof STRING_POSTURE[number]] = key === 'os' ? value.trim().toLowerCase() : value.trim()
    } else if (key === 'extra' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      // The agent nests its free-form signals (evidence, ...) under `extra` already.
      for (const entry of Object.entries(value as Record<string, unknown>)) extra.push(entry)
    } else if (key !== 'reported_at') {
      extra.push([key, value])
    }
  }
  // fromEntries defines own properties: a `__proto__` key stays a plain key.
  if (extra.length > 0) posture.extra = Object.fromEntries(extra)
  posture.reported_at = now
  return { ok: true, posture }
}
