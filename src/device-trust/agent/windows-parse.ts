/**
 * Pure parsers for what the Windows collector (windows.ts) reads through PowerShell; tested on
 * recorded outputs of Windows PowerShell 5.1 and PowerShell 7.
 */
import type { Check } from './types.js'

/**
 * `Get-BitLockerVolume -MountPoint $env:SystemDrive | Select-Object -ExpandProperty
 * ProtectionStatus`: the enum's name, "On" / "Off" / "Unknown" (or its value 1 / 0 / 2 when
 * it went through JSON). Off also covers "suspended" and "encrypting".
 */
export function parseBitLockerProtectionStatus (text: string): Check {
  const t = text.trim().replace(/^"|"$/g, '').toLowerCase()
  if (t === 'on' || t === '1') return true
  if (t === 'off' || t === '0') return false
  return null
}

/**
 * The non-admin fallback: the Shell's System.Volume.BitLockerProtection property of the
 * system drive. 1 = on, 6 = on (locked); 2 = off, 3 = encrypting, 4 = decrypting,
 * 5 = suspended, 8 = waiting for activation (encrypted with a clear key), 0 = cannot be
 * encrypted; anything else unknown.
 */
export function parseShellBitLockerProtection (text: string): { encrypted: Check; meaning: string } {
  const t = text.trim()
  const meanings: Record<string, [Check, string]> = {
    0: [false, 'not encryptable'],
    1: [true, 'on'],
    2: [false, 'off'],
    3: [false, 'encrypting'],
    4: [false, 'decrypting'],
    5: [false, 'suspended'],
    6: [true, 'on (locked)'],
    8: [false, 'waiting for activation']
  }
  const m = /^\d+$/.test(t) ? meanings[t] : undefined
  return m === undefined ? { encrypted: null, meaning: t === '' ? 'no value' : `value ${t.slice(0, 40)}` } : { encrypted: m[0], meaning: m[1] }
}

/** A JSON document of ConvertTo-Json: one object, an array, or PS 5.1's `{ value: [...], Count }` wrapper. */
function jsonList (text: string): unknown[] | null {
  let doc: unknown
  try {
    // PowerShell may prepend a BOM
    doc = JSON.parse(text.replace(/^\uFEFF/, '').trim())
  } catch {
    return null
  }
  if (Array.isArray(doc)) return doc
  if (doc !== null && typeof doc === 'object') {
    const o = doc as Record<string, unknown>
    if (Array.isArray(o.value) && 'Count' in o) return o.value
    return [doc]
  }
  return null
}

/** A GpoBoolean as JSON may carry it: true/false, 1/0 (enum value), "True"/"False"; 2 = NotConfigured. */
function gpoBoolean (v: unknown): Check {
  if (v === true || v === 1 || v === 'True' || v === 'true' || v === '1') return true
  if (v === false || v === 0 || v === 'False' || v === 'false' || v === '0') return false
  return null
}

/**
 * `Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,Enabled | ConvertTo-Json`:
 * on when every profile (Domain, Private, Public) is enabled, off when one is disabled.
 */
export function parseFirewallProfiles (text: string): { enabled: Check; profiles: Record<string, Check> } {
  const list = jsonList(text)
  const profiles: Record<string, Check> = {}
  if (list === null || list.length === 0) return { enabled: null, profiles }
  for (const item of list) {
    if (item === null || typeof item !== 'object') return { enabled: null, profiles: {} }
    const o = item as Record<string, unknown>
    profiles[typeof o.Name === 'string' ? o.Name : `profile${Object.keys(profiles).length + 1}`] = gpoBoolean(o.Enabled)
  }
  const values = Object.values(profiles)
  const enabled: Check = values.includes(false) ? false : values.every((v) => v === true) ? true : null
  return { enabled, profiles }
}

function str (v: unknown): string | null {
  if (v === null || v === undefined) return null
  const s = String(v).trim()
  return s === '' ? null : s
}

/**
 * Screen lock on Windows: the machine inactivity limit (policy InactivityTimeoutSecs > 0
 * locks the session), or a secure screen saver: ScreenSaverIsSecure = 1 with the screen saver
 * active, a screen saver set (SCRNSAVE.EXE) and a timeout above 0. Group Policy values
 * (HKCU\Software\Policies\...) win over the user's. IsSecure = 0 or the screen saver off =
 * false; IsSecure never set = unknown.
 */
export function parseScreenSaverSettings (text: string): { lock: Check; detail: string } {
  const list = jsonList(text)
  const first = list?.[0]
  if (first === null || first === undefined || typeof first !== 'object') return { lock: null, detail: 'screen saver settings: output not understood' }
  const v = first as Record<string, unknown>
  const inactivity = Number(str(v.InactivityTimeoutSecs) ?? '0')
  if (Number.isFinite(inactivity) && inactivity > 0) {
    return { lock: true, detail: `policy InactivityTimeoutSecs = ${inactivity}` }
  }
  const pick = (policy: unknown, user: unknown): { value: string | null; from: string } => {
    const p = str(policy)
    return p !== null ? { value: p, from: 'policy' } : { value: str(user), from: 'user' }
  }
  const secure = pick(v.PolicyScreenSaverIsSecure, v.ScreenSaverIsSecure)
  const active = pick(v.PolicyScreenSaveActive, v.ScreenSaveActive)
  const timeout = pick(v.PolicyScreenSaveTimeOut, v.ScreenSaveTimeOut)
  const exe = pick(v.PolicyScrnSave, v.ScrnSave)
  const shown = `ScreenSaverIsSecure=${secure.value ?? 'unset'} (${secure.from}), ScreenSaveActive=${active.value ?? 'unset'}, ` +
    `ScreenSaveTimeOut=${timeout.value ?? 'unset'}, SCRNSAVE.EXE=${exe.value ?? 'unset'}`
  if (secure.value === '0') return { lock: false, detail: shown }
  if (active.value === '0') return { lock: false, detail: shown }
  if (secure.value !== '1') return { lock: null, detail: shown }
  if (exe.value === null) return { lock: false, detail: `${shown} (no screen saver set)` }
  if (timeout.value !== null && !(Number(timeout.value) > 0)) return { lock: false, detail: shown }
  return { lock: true, detail: shown }
}
