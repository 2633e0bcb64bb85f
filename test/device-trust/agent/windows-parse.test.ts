/** The Windows parsers on recorded PowerShell outputs, and the Windows collector on a fake PC. */
import t from 'tap'
import { collectWindows, SCRIPTS } from '../../../src/device-trust/agent/windows.js'
import {
  parseBitLockerProtectionStatus, parseFirewallProfiles, parseScreenSaverSettings, parseShellBitLockerProtection
} from '../../../src/device-trust/agent/windows-parse.js'
import type { CommandResult, Runner } from '../../../src/device-trust/agent/exec.js'
import { failed, fixture, ok } from './helpers.js'

const f = (name: string): string => fixture('windows', name)

t.test('BitLocker', async (t) => {
  t.equal(parseBitLockerProtectionStatus(f('bitlocker-protectionstatus-on.txt')), true)
  t.equal(parseBitLockerProtectionStatus(f('bitlocker-protectionstatus-off.txt')), false)
  t.equal(parseBitLockerProtectionStatus('1'), true)
  t.equal(parseBitLockerProtectionStatus('0'), false)
  t.equal(parseBitLockerProtectionStatus('Unknown'), null)
  t.equal(parseBitLockerProtectionStatus(f('bitlocker-not-admin.stderr.txt')), null)

  t.same(parseShellBitLockerProtection(f('shell-bitlockerprotection-on.txt')), { encrypted: true, meaning: 'on' })
  t.same(parseShellBitLockerProtection(f('shell-bitlockerprotection-off.txt')), { encrypted: false, meaning: 'off' })
  t.same(parseShellBitLockerProtection(f('shell-bitlockerprotection-suspended.txt')), { encrypted: false, meaning: 'suspended' })
  t.equal(parseShellBitLockerProtection(f('shell-bitlockerprotection-none.txt')).encrypted, null)
  t.equal(parseShellBitLockerProtection('6').encrypted, true)
  t.equal(parseShellBitLockerProtection('7').encrypted, null)
})

t.test('firewall profiles', async (t) => {
  t.same(parseFirewallProfiles(f('firewall-profiles-all-enabled.json')), { enabled: true, profiles: { Domain: true, Private: true, Public: true } })
  t.same(parseFirewallProfiles(f('firewall-profiles-public-disabled.json')), { enabled: false, profiles: { Domain: true, Private: true, Public: false } })
  t.same(parseFirewallProfiles(f('firewall-profiles-single.json')), { enabled: true, profiles: { Public: true } }, 'one profile: an object, not an array')
  t.same(parseFirewallProfiles(f('firewall-profiles-single-disabled.json')), { enabled: false, profiles: { Domain: false } })
  t.equal(parseFirewallProfiles(f('firewall-profiles-pwsh7.json')).enabled, true)
  t.same(parseFirewallProfiles(f('firewall-profiles-strings.json')), { enabled: false, profiles: { Domain: true, Private: false, Public: true } })
  t.equal(parseFirewallProfiles(f('firewall-profiles-value-wrapper.json')).enabled, true, 'PS 5.1 { value, Count } wrapper')
  t.equal(parseFirewallProfiles('\uFEFF[{"Name":"Domain","Enabled":true}]').enabled, true, 'BOM, JSON booleans')
  t.equal(parseFirewallProfiles('[{"Name":"Domain","Enabled":1},{"Name":"Public","Enabled":2}]').enabled, null, 'NotConfigured: unknown')
  t.equal(parseFirewallProfiles('').enabled, null)
  t.equal(parseFirewallProfiles('[]').enabled, null)
  t.equal(parseFirewallProfiles('Get-NetFirewallProfile : Access denied').enabled, null)
})

t.test('screen saver lock', async (t) => {
  t.equal(parseScreenSaverSettings(f('screensaver-secure.json')).lock, true)
  t.equal(parseScreenSaverSettings(f('screensaver-not-secure.json')).lock, false)
  t.equal(parseScreenSaverSettings(f('screensaver-default.json')).lock, null, 'never configured: unknown')
  const noSaver = parseScreenSaverSettings(f('screensaver-secure-no-saver.json'))
  t.equal(noSaver.lock, false)
  t.match(noSaver.detail, /no screen saver set/)
  const policy = parseScreenSaverSettings(f('screensaver-policy.json'))
  t.equal(policy.lock, true, 'Group Policy wins over the user\'s IsSecure=0')
  t.match(policy.detail, /ScreenSaverIsSecure=1 \(policy\)/)
  t.same(parseScreenSaverSettings(f('screensaver-inactivity-policy.json')), { lock: true, detail: 'policy InactivityTimeoutSecs = 900' })
  t.equal(parseScreenSaverSettings('{"ScreenSaveActive":"0","ScreenSaverIsSecure":"1","ScrnSave":"x.scr"}').lock, false, 'screen saver off')
  t.equal(parseScreenSaverSettings('{"ScreenSaveActive":"1","ScreenSaverIsSecure":"1","ScrnSave":"x.scr","ScreenSaveTimeOut":"0"}').lock, false, 'timeout 0')
  t.equal(parseScreenSaverSettings('not json').lock, null)
})

/** A fake PowerShell: answers by which script it was asked to run. */
function fakePowerShell (answers: Partial<Record<keyof typeof SCRIPTS, CommandResult>>): Runner & { scripts: string[] } {
  const scripts: string[] = []
  const run = (async (command: string, args: string[]) => {
    const script = args[args.length - 1] ?? ''
    if (command !== 'powershell.exe') return { status: 'missing', code: null, stdout: '', stderr: '' }
    const key = (Object.keys(SCRIPTS) as Array<keyof typeof SCRIPTS>).find((k) => script.endsWith(SCRIPTS[k]))
    if (key !== undefined) scripts.push(key)
    return (key === undefined ? undefined : answers[key]) ?? failed('not answered')
  }) as Runner & { scripts: string[] }
  run.scripts = scripts
  return run
}

t.test('collector: a compliant PC (elevated)', async (t) => {
  const run = fakePowerShell({
    bitlocker: ok(f('bitlocker-protectionstatus-on.txt')),
    firewall: ok(f('firewall-profiles-all-enabled.json')),
    screenLock: ok(f('screensaver-secure.json'))
  })
  const p = await collectWindows({ run, release: () => '10.0.22631' })
  t.same({ ...p, extra: undefined }, { os: 'windows', os_version: '10.0.22631', disk_encrypted: true, screen_lock: true, firewall: true, extra: undefined })
  t.match(p.extra.evidence, { disk_encrypted: /ProtectionStatus On/, firewall: /Domain enabled, Private enabled, Public enabled/ })
  t.notOk(run.scripts.includes('bitlockerShell'), 'no fallback needed')
})

t.test('collector: not elevated → Shell fallback; a profile off', async (t) => {
  const run = fakePowerShell({
    bitlocker: failed(f('bitlocker-not-admin.stderr.txt')),
    bitlockerShell: ok(f('shell-bitlockerprotection-suspended.txt')),
    firewall: ok(f('firewall-profiles-public-disabled.json')),
    screenLock: ok(f('screensaver-default.json'))
  })
  const p = await collectWindows({ run, release: () => '10.0.19045' })
  t.same([p.os_version, p.disk_encrypted, p.firewall, p.screen_lock], ['10.0.19045', false, false, null])
  t.match(p.extra.evidence.disk_encrypted, /Shell BitLockerProtection: suspended/)
  t.match(p.extra.evidence.firewall, /Public disabled/)
})

t.test('collector: PowerShell missing → unknown, never a crash', async (t) => {
  const none: Runner = async () => ({ status: 'missing', code: null, stdout: '', stderr: '' })
  const p = await collectWindows({ run: none, release: () => '10.0.22631' })
  t.same([p.disk_encrypted, p.firewall, p.screen_lock], [null, null, null])
  t.match(p.extra.evidence.firewall, /not installed/)
})
