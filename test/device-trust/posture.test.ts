import t from 'tap'
import { applySettings, parsePostureClaim, parseSetting } from '../../src/device-trust/posture.js'
import type { DeviceRecord } from '../../src/store/index.js'

t.test('settings: KEY=VALUE with typed values and clear errors', async (t) => {
  t.same(parseSetting('managed=true'), { key: 'managed', value: true })
  t.same(parseSetting('disk_encrypted=false'), { key: 'disk_encrypted', value: false })
  t.same(parseSetting('os=macOS'), { key: 'os', value: 'macos' }, 'os is lowercase')
  t.same(parseSetting('os_version=14.5'), { key: 'os_version', value: '14.5' })
  t.throws(() => parseSetting('colour=blue'), /unknown key "colour" \(keys: managed, corp_owned, os, os_version, disk_encrypted, screen_lock, firewall\)/)
  t.throws(() => parseSetting('firewall=yes'), /bad value for firewall: expected true or false, got "yes"/)
  t.throws(() => parseSetting('firewall'), /expected KEY=VALUE/)
  t.throws(() => parseSetting('=true'), /expected KEY=VALUE/)
  t.throws(() => parseSetting('os='), /bad value for os/)
  t.throws(() => parseSetting('os_version=1\n2'), /bad value for os_version/)
})

t.test('settings apply as a fresh report, other posture kept', async (t) => {
  const d: DeviceRecord = {
    id: 'd', owner: 'a@example.com', cert_fingerprints: [], public_keys: [], managed: false, corp_owned: false,
    posture: { os: 'linux', firewall: true, reported_at: 1 }, status: 'active', created_at: 1, updated_at: 1
  }
  const next = applySettings(d, [parseSetting('managed=true'), parseSetting('disk_encrypted=true'), parseSetting('os_version=6.8')], 1000)
  t.same(next.posture, { os: 'linux', firewall: true, disk_encrypted: true, os_version: '6.8', reported_at: 1000 })
  t.equal(next.managed, true)
  t.equal(next.updated_at, 1000)
  t.equal(d.managed, false, 'the input is not changed')
})

t.test('report claim: known fields typed, the rest kept under extra', async (t) => {
  const ok = parsePostureClaim({ os: 'Windows', os_version: '10.0.22631', disk_encrypted: true, screen_lock: false, firewall: null, agent: '1.2', extra: { evidence: { firewall: 'netsh: unknown' } } }, 42)
  t.same(ok, {
    ok: true,
    posture: { os: 'windows', os_version: '10.0.22631', disk_encrypted: true, screen_lock: false, reported_at: 42, extra: { agent: '1.2', evidence: { firewall: 'netsh: unknown' } } }
  })
  const selfManaged = parsePostureClaim({ managed: true, corp_owned: true, reported_at: 1 }, 42)
  t.same(selfManaged, { ok: true, posture: { reported_at: 42, extra: { managed: true, corp_owned: true } } }, 'a device cannot declare itself managed; its reported_at is ignored')
  const proto = parsePostureClaim(JSON.parse('{"__proto__": {"polluted": true}}'), 1)
  t.ok(proto.ok && Object.hasOwn(proto.posture.extra ?? {}, '__proto__'), 'a __proto__ key stays a plain key')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.same(parsePostureClaim(undefined, 1), { ok: false, reason: 'the report has no posture claim' })
  t.same(parsePostureClaim([], 1), { ok: false, reason: 'posture must be a JSON object' })
  t.same(parsePostureClaim({ disk_encrypted: 'yes' }, 1), { ok: false, reason: 'posture.disk_encrypted must be true or false' })
  t.same(parsePostureClaim({ os: 14 }, 1), { ok: false, reason: 'posture.os must be a string of at most 128 characters' })
})
