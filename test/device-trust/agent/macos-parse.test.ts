/** The macOS parsers on recorded outputs, and the macOS collector on a fake Mac. */
import t from 'tap'
import { collectMacos } from '../../../src/device-trust/agent/macos.js'
import {
  parseAskForPassword, parseFdesetupStatus, parseSocketfilterfw, parseSwVers, parseSysadminctlScreenLock,
  parseSystemVersionPlist
} from '../../../src/device-trust/agent/macos-parse.js'
import { failed, fakeRunner, fixture, ok } from './helpers.js'

const f = (name: string): string => fixture('macos', name)
const FW = '/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate'

t.test('os version', async (t) => {
  t.equal(parseSwVers(f('sw_vers-productVersion.txt')), '14.5')
  t.equal(parseSwVers(f('sw_vers-productVersion-15.txt')), '15.1.1')
  t.equal(parseSwVers('sw_vers: command not found'), null)
  t.equal(parseSystemVersionPlist(f('SystemVersion.plist')), '14.5')
  t.equal(parseSystemVersionPlist('<plist></plist>'), null)
})

t.test('FileVault', async (t) => {
  t.same(parseFdesetupStatus(f('fdesetup-on.txt')), { encrypted: true, detail: 'fdesetup: FileVault is On' })
  t.equal(parseFdesetupStatus(f('fdesetup-off.txt')).encrypted, false)
  const enc = parseFdesetupStatus(f('fdesetup-encrypting.txt'))
  t.equal(enc.encrypted, false, 'still encrypting: not (yet) encrypted')
  t.match(enc.detail, /Encryption in progress: Percent completed = 37.2/)
  t.equal(parseFdesetupStatus(f('fdesetup-deferred.txt')).encrypted, false)
  t.equal(parseFdesetupStatus('Error: something').encrypted, null)
})

t.test('Application Firewall', async (t) => {
  t.equal(parseSocketfilterfw(f('socketfilterfw-enabled.txt')), true)
  t.equal(parseSocketfilterfw(f('socketfilterfw-block-all.txt')), true)
  t.equal(parseSocketfilterfw(f('socketfilterfw-disabled.txt')), false)
  t.equal(parseSocketfilterfw(''), null)
})

t.test('screen lock', async (t) => {
  t.same(parseSysadminctlScreenLock(f('sysadminctl-screenlock-immediate.stderr.txt')), { lock: true, delay: 'immediate' })
  t.same(parseSysadminctlScreenLock(f('sysadminctl-screenlock-300.stderr.txt')), { lock: true, delay: '300 seconds' })
  t.same(parseSysadminctlScreenLock(f('sysadminctl-screenlock-off.stderr.txt')), { lock: false, delay: null })
  t.same(parseSysadminctlScreenLock('sysadminctl[1:2] ### Error:-60007'), { lock: null, delay: null })
  t.equal(parseAskForPassword(f('defaults-askForPassword-1.txt')), true)
  t.equal(parseAskForPassword(f('defaults-askForPassword-0.txt')), false)
  t.equal(parseAskForPassword(f('defaults-askForPassword-missing.stderr.txt')), null)
})

t.test('collector: a compliant Mac', async (t) => {
  const run = fakeRunner({
    'sw_vers -productVersion': ok(f('sw_vers-productVersion.txt')),
    'sw_vers -buildVersion': ok(f('sw_vers-buildVersion.txt')),
    'fdesetup status': ok(f('fdesetup-on.txt')),
    [FW]: ok(f('socketfilterfw-enabled.txt')),
    // sysadminctl answers on stderr
    'sysadminctl -screenLock status': { status: 'ok', code: 0, stdout: '', stderr: f('sysadminctl-screenlock-immediate.stderr.txt') }
  })
  const p = await collectMacos({ run, readText: async () => null, kernel: () => '23.5.0' })
  t.same({ ...p, extra: undefined }, { os: 'macos', os_version: '14.5', disk_encrypted: true, screen_lock: true, firewall: true, extra: undefined })
  t.equal(p.extra.build, '23F79')
  t.equal(p.extra.kernel, '23.5.0')
  t.match(p.extra.evidence, { disk_encrypted: /FileVault is On/, firewall: /State = 1/, screen_lock: /immediate/ })
  t.notOk(run.calls.some((c) => c.startsWith('defaults')), 'no fallback needed')
})

t.test('collector: everything off, screen lock from defaults, version from the plist', async (t) => {
  const run = fakeRunner({
    'sw_vers -productVersion': failed('xcrun: error'),
    'fdesetup status': ok(f('fdesetup-off.txt')),
    [FW]: ok(f('socketfilterfw-disabled.txt')),
    'sysadminctl -screenLock status': failed('sysadminctl[1:2] ### Error:-60007'),
    'defaults read com.apple.screensaver askForPassword': ok(f('defaults-askForPassword-0.txt'))
  })
  const p = await collectMacos({
    run,
    readText: async (path) => path === '/System/Library/CoreServices/SystemVersion.plist' ? f('SystemVersion.plist') : null,
    kernel: () => '23.5.0'
  })
  t.equal(p.os_version, '14.5')
  t.equal(p.disk_encrypted, false)
  t.equal(p.firewall, false)
  t.equal(p.screen_lock, false)
  t.match(p.extra.evidence.screen_lock, /askForPassword = 0/)
})

t.test('collector: nothing answers → unknown, never a crash', async (t) => {
  const p = await collectMacos({ run: fakeRunner({}), readText: async () => null, kernel: () => '23.5.0' })
  t.same([p.os_version, p.disk_encrypted, p.screen_lock, p.firewall], ['', null, null, null])
  t.match(p.extra.evidence, { disk_encrypted: /not installed/, firewall: /not installed/, screen_lock: /not installed/ })
})
