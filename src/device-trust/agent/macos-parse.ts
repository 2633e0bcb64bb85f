/**
 * Pure parsers for what the macOS collector (macos.ts) reads; tested on recorded outputs.
 */
import type { Check } from './types.js'

const VERSION = /^\d+(\.\d+){0,3}$/

/** `sw_vers -productVersion`: "14.5", "15.0.1". */
export function parseSwVers (text: string): string | null {
  const v = text.trim()
  return VERSION.test(v) ? v : null
}

/** /System/Library/CoreServices/SystemVersion.plist (XML): the ProductVersion string. */
export function parseSystemVersionPlist (text: string): string | null {
  const m = /<key>ProductVersion<\/key>\s*<string>([^<]+)<\/string>/.exec(text)
  const v = m?.[1]?.trim()
  return v !== undefined && VERSION.test(v) ? v : null
}

/**
 * `fdesetup status`: "FileVault is On." / "FileVault is Off." plus, while it changes,
 * "Encryption in progress: Percent completed = 42.1" or "Decryption in progress: ...".
 * Only a volume that is fully encrypted counts; "Off, but will be enabled after the next
 * restart" is off.
 */
export function parseFdesetupStatus (text: string): { encrypted: Check; detail: string } {
  const first = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '') ?? ''
  const progress = /(Encryption|Decryption) in progress:[^\n]*/i.exec(text)?.[0]?.trim()
  if (/^FileVault is On\b/i.test(first)) {
    if (progress !== undefined) return { encrypted: false, detail: `fdesetup: FileVault is On; ${progress}` }
    return { encrypted: true, detail: 'fdesetup: FileVault is On' }
  }
  if (/^FileVault is Off\b/i.test(first)) {
    return { encrypted: false, detail: `fdesetup: ${first.replace(/\.$/, '')}` }
  }
  return { encrypted: null, detail: `fdesetup: output not understood: ${first.slice(0, 120)}` }
}

/**
 * `/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate`:
 * "Firewall is enabled. (State = 1)", "Firewall is enabled. (State = 2)" (block all incoming),
 * "Firewall is disabled. (State = 0)".
 */
export function parseSocketfilterfw (text: string): Check {
  const state = /\(State = (\d+)\)/.exec(text)?.[1]
  if (state !== undefined) return state !== '0'
  if (/Firewall is enabled/i.test(text)) return true
  if (/Firewall is disabled/i.test(text)) return false
  return null
}

/**
 * `sysadminctl -screenLock status` (prints to stderr, after a log prefix):
 * "screenLock delay is immediate", "screenLock delay is 300 seconds", "screenLock is off".
 */
export function parseSysadminctlScreenLock (text: string): { lock: Check; delay: string | null } {
  if (/screenLock is off/i.test(text)) return { lock: false, delay: null }
  const m = /screenLock delay is (immediate|\d+ seconds?)/i.exec(text)
  if (m !== null) return { lock: true, delay: m[1] as string }
  return { lock: null, delay: null }
}

/** `defaults read com.apple.screensaver askForPassword`: 1 / 0; an error when never set. */
export function parseAskForPassword (text: string): Check {
  const t = text.trim()
  if (t === '1') return true
  if (t === '0') return false
  return null
}
