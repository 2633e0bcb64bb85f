/**
 * macOS posture:
 * - os_version: `sw_vers -productVersion` (fallback: SystemVersion.plist); build in extra.
 * - disk_encrypted: `fdesetup status` — FileVault On and not en/decrypting.
 * - firewall: `socketfilterfw --getglobalstate` — the Application Firewall's global state.
 * - screen_lock: `sysadminctl -screenLock status` (a password is asked after sleep or the
 *   screen saver); fallback `defaults read com.apple.screensaver askForPassword`. Both read
 *   the current user's settings: run the agent as the logged-in user, not as a root daemon.
 */
import { readFile } from 'node:fs/promises'
import { release } from 'node:os'
import { runCommand, whyNot, type Runner } from './exec.js'
import {
  parseAskForPassword, parseFdesetupStatus, parseSocketfilterfw, parseSwVers, parseSysadminctlScreenLock,
  parseSystemVersionPlist
} from './macos-parse.js'
import type { Check, Posture } from './types.js'

export interface MacosHost {
  run: Runner
  readText: (path: string) => Promise<string | null>
  kernel: () => string
}

export const realMacosHost: MacosHost = {
  run: runCommand,
  readText: async (p) => {
    try {
      return await readFile(p, 'utf8')
    } catch {
      return null
    }
  },
  kernel: release
}

export async function collectMacos (host: MacosHost = realMacosHost): Promise<Posture> {
  const extra: Posture['extra'] = { evidence: {}, kernel: host.kernel() }
  const [ver, build, fde, fw, lockCmd] = await Promise.all([
    host.run('sw_vers', ['-productVersion']),
    host.run('sw_vers', ['-buildVersion']),
    host.run('fdesetup', ['status'], { timeoutMs: 5000 }),
    host.run('/usr/libexec/ApplicationFirewall/socketfilterfw', ['--getglobalstate']),
    host.run('sysadminctl', ['-screenLock', 'status'], { timeoutMs: 5000 })
  ])

  let osVersion = ver.status === 'ok' ? parseSwVers(ver.stdout) : null
  if (osVersion !== null) {
    extra.evidence.os_version = 'sw_vers -productVersion'
  } else {
    const plist = await host.readText('/System/Library/CoreServices/SystemVersion.plist')
    osVersion = plist === null ? null : parseSystemVersionPlist(plist)
    extra.evidence.os_version = osVersion !== null ? 'SystemVersion.plist' : `${whyNot('sw_vers', ver)}; SystemVersion.plist not readable`
  }
  if (build.status === 'ok' && build.stdout.trim() !== '') extra.build = build.stdout.trim()

  let disk: Check = null
  if (fde.status === 'ok') {
    const f = parseFdesetupStatus(fde.stdout)
    disk = f.encrypted
    extra.evidence.disk_encrypted = f.detail
  } else {
    extra.evidence.disk_encrypted = whyNot('fdesetup status', fde)
  }

  const firewall = fw.status === 'ok' ? parseSocketfilterfw(fw.stdout) : null
  extra.evidence.firewall = firewall === null
    ? whyNot('socketfilterfw --getglobalstate', fw)
    : `socketfilterfw: ${fw.stdout.trim()}`

  // sysadminctl logs to stderr; some versions exit non-zero even when they answer.
  let lock = parseSysadminctlScreenLock(lockCmd.stdout + '\n' + lockCmd.stderr)
  if (lock.lock !== null) {
    extra.evidence.screen_lock = lock.lock ? `sysadminctl: screenLock delay is ${lock.delay ?? '?'}` : 'sysadminctl: screenLock is off'
  } else {
    const d = await host.run('defaults', ['read', 'com.apple.screensaver', 'askForPassword'])
    const v = d.status === 'ok' ? parseAskForPassword(d.stdout) : null
    lock = { lock: v, delay: null }
    extra.evidence.screen_lock = v === null
      ? `${whyNot('sysadminctl -screenLock status', lockCmd)}; ${whyNot('defaults read com.apple.screensaver askForPassword', d)}`
      : `defaults: com.apple.screensaver askForPassword = ${d.stdout.trim()}`
  }

  return {
    os: 'macos',
    os_version: osVersion ?? '',
    disk_encrypted: disk,
    screen_lock: lock.lock,
    firewall,
    extra
  }
}
