import t from 'tap'
import { compareVersions, parseVersion, TrustLevels } from '../../src/device-trust/trust-levels.js'
import type { DeviceRecord } from '../../src/store/index.js'

const NOW = Date.parse('2030-06-01T12:00:00Z')
const HOUR = 3_600_000
const DAY = 24 * HOUR

// The SPEC's example levels.
const levels = new TrustLevels([
  { name: 'known', require: { enrolled: true } },
  { name: 'managed', require: { managed: true, disk_encrypted: true, screen_lock: true } },
  { name: 'high', require: { managed: true, disk_encrypted: true, screen_lock: true, firewall: true, os_min: { macos: '14.5', windows: '10.0.22631', linux: '6.1' } } }
], DAY)

function device (over: Partial<DeviceRecord> = {}, posture: DeviceRecord['posture'] = {}): DeviceRecord {
  return {
    id: 'laptop-1',
    owner: 'alice@example.com',
    cert_fingerprints: [],
    public_keys: [],
    managed: true,
    corp_owned: true,
    posture: { os: 'macos', os_version: '14.6', disk_encrypted: true, screen_lock: true, firewall: true, reported_at: NOW - HOUR, ...posture },
    status: 'active',
    created_at: NOW - DAY,
    updated_at: NOW - HOUR,
    ...over
  }
}

t.test('versions compare numerically, dotted, missing parts as 0', async (t) => {
  const cmp = (a: string, b: string): number => Math.sign(compareVersions(parseVersion(a) as number[], parseVersion(b) as number[]))
  t.equal(cmp('14.10', '14.5'), 1)
  t.equal(cmp('14.5', '14.5.0'), 0)
  t.equal(cmp('13.6.1', '14.5'), -1)
  t.equal(cmp('10.0.22631', '10.0.22000'), 1)
  t.equal(cmp('6.1.0-18-amd64', '6.1'), 0, 'a Linux kernel release reads as its numeric prefix')
  t.equal(cmp('6.10', '6.9'), 1)
  t.equal(parseVersion('sonoma'), null)
  t.equal(parseVersion(''), null)
})

t.test('a device gets the highest level whose requirements all hold', async (t) => {
  const top = levels.grade(device(), NOW).device
  t.same([top.id, top.trust, top.trustRank, top.reasons], ['laptop-1', 'high', 3, []])

  const noFirewall = levels.grade(device({}, { firewall: false }), NOW).device
  t.same([noFirewall.trust, noFirewall.trustRank], ['managed', 2])
  t.same(noFirewall.reasons, ['firewall is off'])
  t.same(Object.keys(noFirewall.shortfalls ?? {}), ['high'], 'shortfalls only for the levels above')

  const plain = levels.grade(device({ managed: false }, { disk_encrypted: false }), NOW).device
  t.equal(plain.trust, 'known')
  t.same(plain.reasons, ['not managed by IT', 'disk encryption is off'], 'every reason once, lowest level first')
  t.same(plain.shortfalls?.managed?.map((s) => s.reason), ['not managed by IT', 'disk encryption is off'])
  t.match(plain.shortfalls?.managed?.[1]?.remedy, /FileVault \/ BitLocker \/ LUKS.*moatless agent report/)
})

t.test('levels are checked independently, not cumulatively', async (t) => {
  const odd = new TrustLevels([
    { name: 'corp', require: { corp_owned: true } },
    { name: 'managed', require: { managed: true } }
  ], DAY)
  const d = odd.grade(device({ corp_owned: false, managed: true }), NOW).device
  t.same([d.trust, d.trustRank], ['managed', 2], 'fails the lower level, holds the higher one')
  t.same(d.reasons, [], 'nothing above it')
})

t.test('unknown posture fails, and says so', async (t) => {
  const d = levels.grade(device({}, { screen_lock: undefined, firewall: undefined }), NOW).device
  t.equal(d.trust, 'known')
  t.same(d.reasons, ['screen lock status unknown', 'firewall status unknown'])
})

t.test('a stale report counts as unknown; attributes do not age', async (t) => {
  const old = device({}, { reported_at: NOW - 3 * DAY })
  const { device: d, validUntil } = levels.grade(old, NOW)
  t.equal(d.trust, 'known')
  t.same(d.reasons, ['posture report is 3 days old: run the agent (moatless agent report)'])
  t.equal(validUntil, Number.POSITIVE_INFINITY)
  const fresh = levels.grade(device({}, { reported_at: NOW - 23 * HOUR }), NOW)
  t.equal(fresh.device.trust, 'high')
  t.equal(fresh.validUntil, NOW + HOUR + 1, 'the grade is good until the report goes stale')
  t.same(levels.grade(device({}, { reported_at: NOW - 30 * HOUR }), NOW).device.reasons, ['posture report is 30 hours old: run the agent (moatless agent report)'])
  t.same(levels.grade(device({}, { reported_at: undefined }), NOW).device.reasons, ['no posture report yet: run the agent (moatless agent report)'])
  const attrsOnly = new TrustLevels([{ name: 'corp', require: { managed: true, corp_owned: true } }], DAY)
  t.equal(attrsOnly.grade(old, NOW).device.trust, 'corp', 'managed and corp_owned hold however old the report')
})

t.test('os_min: the OS must be listed and at least that version', async (t) => {
  const why = (posture: DeviceRecord['posture']): string[] => levels.grade(device({}, posture), NOW).device.reasons
  t.same(why({ os: 'macos', os_version: '13.6' }), ['macOS 13.6 is older than the required 14.5'])
  t.same(why({ os: 'windows', os_version: '10.0.19045' }), ['Windows 10.0.19045 is older than the required 10.0.22631'])
  t.same(why({ os: 'linux', os_version: '6.8.0-45-generic' }), [])
  t.same(why({ os: 'freebsd', os_version: '14.1' }), ['freebsd is not an allowed operating system here (allowed: macOS 14.5+, Windows 10.0.22631+, Linux 6.1+)'])
  t.same(why({ os: undefined }), ['operating system unknown'])
  t.same(why({ os_version: undefined }), ['macOS version unknown'])
  t.same(why({ os_version: 'beta' }), ['macOS version "beta" is not a version number'])
  const remedy = levels.grade(device({}, { os_version: '13.6' }), NOW).device.shortfalls?.high?.[0]?.remedy
  t.equal(remedy, 'Update macOS to 14.5 or later, then run `moatless agent report` on this device.')
})

t.test('a requirement written as false asks for nothing; no levels: everything is none', async (t) => {
  const lax = new TrustLevels([{ name: 'any', require: { managed: false, firewall: false } }], DAY)
  t.equal(lax.grade(device({ managed: false }, { firewall: false }), NOW).device.trust, 'any')
  const none = new TrustLevels([], DAY).grade(device(), NOW).device
  t.same([none.id, none.trust, none.trustRank, none.reasons], ['laptop-1', 'none', 0, []])
})

t.test('untrusted: no id, trust none, the one reason for every level', async (t) => {
  const d = levels.untrusted({ reason: 'this device belongs to someone else', remedy: 'Use your own.' })
  t.same([d.id, d.trust, d.trustRank, d.reasons], [null, 'none', 0, ['this device belongs to someone else']])
  t.same(Object.keys(d.shortfalls ?? {}), ['known', 'managed', 'high'])
  t.ok(Object.isFrozen(d))
})
