/**
 * Windows posture, through Windows PowerShell (powershell.exe, present on every Windows 10/11):
 * - os_version: os.release() (10.0.22631).
 * - disk_encrypted: BitLocker protection of the system drive, `Get-BitLockerVolume` (needs an
 *   elevated prompt); without elevation, the Shell's System.Volume.BitLockerProtection.
 * - firewall: `Get-NetFirewallProfile -PolicyStore ActiveStore` (the effective state, Group
 *   Policy included): every profile enabled.
 * - screen_lock: the machine inactivity limit policy, or a secure screen saver
 *   (HKCU\Control Panel\Desktop, and its Group Policy counterpart).
 */
import { release } from 'node:os'
import { runCommand, whyNot, type Runner } from './exec.js'
import {
  parseBitLockerProtectionStatus, parseFirewallProfiles, parseScreenSaverSettings, parseShellBitLockerProtection
} from './windows-parse.js'
import type { Check, Posture } from './types.js'

export interface WindowsHost {
  run: Runner
  release: () => string
}

export const realWindowsHost: WindowsHost = { run: runCommand, release }

const POWERSHELL_TIMEOUT_MS = 15_000

const PRELUDE = "$ProgressPreference = 'SilentlyContinue'; $ErrorActionPreference = 'Stop'; "

export const SCRIPTS = {
  bitlocker: 'Get-BitLockerVolume -MountPoint $env:SystemDrive | Select-Object -ExpandProperty ProtectionStatus',
  bitlockerShell: "(New-Object -ComObject Shell.Application).NameSpace($env:SystemDrive + '\\').Self.ExtendedProperty('System.Volume.BitLockerProtection')",
  firewall: 'Get-NetFirewallProfile -PolicyStore ActiveStore | Select-Object Name,Enabled | ConvertTo-Json',
  screenLock: [
    "$u = Get-ItemProperty -Path 'HKCU:\\Control Panel\\Desktop' -ErrorAction SilentlyContinue",
    "$p = Get-ItemProperty -Path 'HKCU:\\Software\\Policies\\Microsoft\\Windows\\Control Panel\\Desktop' -ErrorAction SilentlyContinue",
    "$m = Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System' -ErrorAction SilentlyContinue",
    '[pscustomobject]@{ ScreenSaveActive = $u.ScreenSaveActive; ScreenSaverIsSecure = $u.ScreenSaverIsSecure;' +
      " ScreenSaveTimeOut = $u.ScreenSaveTimeOut; ScrnSave = $u.'SCRNSAVE.EXE';" +
      ' PolicyScreenSaveActive = $p.ScreenSaveActive; PolicyScreenSaverIsSecure = $p.ScreenSaverIsSecure;' +
      " PolicyScreenSaveTimeOut = $p.ScreenSaveTimeOut; PolicyScrnSave = $p.'SCRNSAVE.EXE';" +
      ' InactivityTimeoutSecs = $m.InactivityTimeoutSecs } | ConvertTo-Json'
  ].join('; ')
} as const

function powershell (host: WindowsHost, script: string): ReturnType<Runner> {
  return host.run('powershell.exe', ['-NoLogo', '-NoProfile', '-NonInteractive', '-Command', PRELUDE + script], { timeoutMs: POWERSHELL_TIMEOUT_MS })
}

export async function collectWindows (host: WindowsHost = realWindowsHost): Promise<Posture> {
  const extra: Posture['extra'] = { evidence: { os_version: 'os.release()' } }
  const [bl, fw, lockOut] = await Promise.all([
    powershell(host, SCRIPTS.bitlocker),
    powershell(host, SCRIPTS.firewall),
    powershell(host, SCRIPTS.screenLock)
  ])

  let disk: Check = bl.status === 'ok' ? parseBitLockerProtectionStatus(bl.stdout) : null
  if (disk !== null) {
    extra.evidence.disk_encrypted = `Get-BitLockerVolume: ProtectionStatus ${bl.stdout.trim()}`
  } else {
    const shell = await powershell(host, SCRIPTS.bitlockerShell)
    const s = shell.status === 'ok' ? parseShellBitLockerProtection(shell.stdout) : null
    disk = s?.encrypted ?? null
    extra.evidence.disk_encrypted = s !== null && s.encrypted !== null
      ? `Shell BitLockerProtection: ${s.meaning}`
      : `${whyNot('Get-BitLockerVolume', bl)}; ${s === null ? whyNot('Shell BitLockerProtection', shell) : `Shell BitLockerProtection: ${s.meaning}`}`
  }

  const profiles = fw.status === 'ok' ? parseFirewallProfiles(fw.stdout) : null
  const firewall = profiles?.enabled ?? null
  extra.evidence.firewall = profiles === null || Object.keys(profiles.profiles).length === 0
    ? whyNot('Get-NetFirewallProfile', fw)
    : 'Get-NetFirewallProfile: ' + Object.entries(profiles.profiles).map(([n, v]) => `${n} ${v === null ? 'unknown' : v ? 'enabled' : 'disabled'}`).join(', ')

  const lock = lockOut.status === 'ok' ? parseScreenSaverSettings(lockOut.stdout) : null
  extra.evidence.screen_lock = lock === null ? whyNot('screen saver settings', lockOut) : lock.detail

  return {
    os: 'windows',
    os_version: host.release(),
    disk_encrypted: disk,
    screen_lock: lock?.lock ?? null,
    firewall,
    extra
  }
}
