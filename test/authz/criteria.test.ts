/**
 * Each criterion, true and false, with the explanation it gives when unmet. Every case
 * compiles a one-rule app `allow: <condition>` through the real config schema.
 */
import t from 'tap'
import { evaluate, explain } from '../../src/authz/index.js'
import type { DecisionInput } from '../../src/authz/index.js'
import { compileApp, device, request, user } from './fixtures.js'

/** The assertions `check` uses, as any tap `t` has them. */
interface Asserts {
  equal (found: unknown, wanted: unknown, message: string): boolean
  same (found: unknown, wanted: unknown, message: string): boolean
}

type Case = [what: string, input: Partial<DecisionInput>, allowed: boolean, unmet?: string[]]

function check (condition: Record<string, unknown>, cases: Case[]) {
  return async (t: Asserts) => {
    const app = compileApp({ rules: [{ name: 'r', allow: condition }] })
    for (const [what, input, allowed, unmet] of cases) {
      const full = request(input)
      t.equal(evaluate(app, full).decision, allowed ? 'allow' : 'deny', what)
      if (unmet !== undefined) t.same(explain(app, full)[0]?.unmet, unmet, `${what}: explanation`)
    }
  }
}

t.test('authenticated', check({ authenticated: true }, [
  ['signed in', {}, true],
  ['bearer identity counts the same', { identity: user({ via: 'bearer' }) }, true]
]))

t.test('authenticated: unmet without identity (explain only)', async (t) => {
  const app = compileApp({ rules: [{ name: 'r', allow: { authenticated: true } }] })
  t.same(explain(app, request({ identity: null }))[0]?.unmet, ['user-unauthenticated: needs a signed-in user'])
})

t.test('users', check({ users: ['u-bob', 'Alice@Example.com'] }, [
  ['by sub', { identity: user({ sub: 'u-bob', email: 'nobody@x.org' }) }, true],
  ['by email, case-insensitive', { identity: user({ sub: 'u-1' }) }, true],
  ['sub is exact', { identity: user({ sub: 'U-BOB', email: 'nobody@x.org' }) }, false],
  ['other user', { identity: user({ sub: 'u-eve', email: 'eve@example.com' }) }, false,
    ['user-unauthorized: needs one of users u-bob, Alice@Example.com']],
  ['no email', { identity: user({ sub: 'u-eve', email: undefined }) }, false]
]))

t.test('users: a single value', check({ users: 'u-bob' }, [
  ['other', { identity: user({ sub: 'u-eve' }) }, false, ['user-unauthorized: needs user u-bob']]
]))

t.test('emails', check({ emails: ['Alice@Example.com'] }, [
  ['same email, any case', { identity: user({ email: 'ALICE@example.COM' }) }, true],
  ['other email', { identity: user({ email: 'bob@example.com' }) }, false, ['email-unauthorized: needs email Alice@Example.com']],
  ['the sub is not an email', { identity: user({ sub: 'alice@example.com', email: undefined }) }, false]
]))

t.test('domains', check({ domains: ['example.com', 'Example.ORG'] }, [
  ['verified, first domain', { identity: user({ email: 'a@example.com' }) }, true],
  ['verified, second domain, any case', { identity: user({ email: 'a@EXAMPLE.org' }) }, true],
  ['email_verified false', { identity: user({ email: 'a@example.com', email_verified: false }) }, false,
    ['email-unverified: needs a verified email in one of domains example.com, Example.ORG (the IdP does not say the email is verified)']],
  ['email_verified absent', { identity: user({ email: 'a@example.com', email_verified: undefined }) }, false],
  ['two @', { identity: user({ email: 'a@example.com@example.com' }) }, false,
    ['domain-unauthorized: needs a verified email in one of domains example.com, Example.ORG']],
  ['attacker domain with the allowed one in the local part', { identity: user({ email: 'example.com@evil.org' }) }, false],
  ['subdomain', { identity: user({ email: 'a@x.example.com' }) }, false],
  ['no email', { identity: user({ email: undefined }) }, false],
  ['empty local part', { identity: user({ email: '@example.com' }) }, false]
]))

t.test('groups', check({ groups: ['engineering', 'sre'] }, [
  ['member of the second', { identity: user({ groups: ['sales', 'sre'] }) }, true],
  ['exact names only', { identity: user({ groups: ['Engineering', 'sre-oncall'] }) }, false,
    ['groups-unauthorized: needs one of groups engineering, sre (member of: Engineering, sre-oncall)']],
  ['no groups', { identity: user({ groups: [] }) }, false, ['groups-unauthorized: needs one of groups engineering, sre (member of: none)']]
]))

t.test('groups: a long membership list is cut', check({ groups: 'engineering' }, [
  ['many groups', { identity: user({ groups: Array.from({ length: 12 }, (_, i) => `g${i}`) }) }, false,
    ['groups-unauthorized: needs group engineering (member of: g0, g1, g2, g3, g4, g5, g6, g7, g8, g9 (+2 more))']]
]))

t.test('claims', check({ claims: { role: ['admin', 'owner'], level: 3, staff: true } }, [
  ['all claims hold', { identity: user({ claims: { role: 'owner', level: 3, staff: true } }) }, true],
  ['array claim contains a value', { identity: user({ claims: { role: ['viewer', 'admin'], level: 3, staff: true } }) }, true],
  ['array claim without a value', { identity: user({ claims: { role: ['viewer'], level: 3, staff: true } }) }, false,
    ['claim-unauthorized: needs claim role in admin, owner (has: viewer)']],
  ['strict types: "3" is not 3, "true" is not true', { identity: user({ claims: { role: 'admin', level: '3', staff: 'true' } }) }, false,
    ['claim-unauthorized: needs claim level = 3 (has: 3)', 'claim-unauthorized: needs claim staff = true (has: true)']],
  ['absent claim', { identity: user({ claims: { level: 3, staff: true } }) }, false, ['claim-unauthorized: needs claim role in admin, owner (claim absent)']],
  ['object claim', { identity: user({ claims: { role: { admin: true }, level: 3, staff: true } }) }, false,
    ['claim-unauthorized: needs claim role in admin, owner (has another value)']]
]))

t.test('claims: inherited properties are not claims', check({ claims: { constructor: ['x'], toString: 'y' } }, [
  ['empty claims', { identity: user({ claims: {} }) }, false],
  ['own claims', { identity: user({ claims: { constructor: 'x', toString: ['y'] } }) }, true]
]))

t.test('device trust ranks', async (t) => {
  for (const [required, levels] of [
    ['none', { none: true, known: true, managed: true, high: true }],
    ['known', { none: false, known: true, managed: true, high: true }],
    ['managed', { none: false, known: false, managed: true, high: true }],
    ['high', { none: false, known: false, managed: false, high: true }]
  ] as const) {
    const app = compileApp({ rules: [{ name: 'r', allow: { device: { trust: required } } }] })
    for (const [level, allowed] of Object.entries(levels)) {
      t.equal(evaluate(app, request({ device: device(level) })).decision, allowed ? 'allow' : 'deny', `${level} device, needs ${required}`)
    }
  }
})

t.test('device trust explanations', check({ device: { trust: 'managed' } }, [
  ['known device with reasons', { device: device('known', { reasons: ['disk not encrypted', 'no screen lock'] }) }, false,
    ['device-unauthorized: needs a device at level managed; this device is known: disk not encrypted, no screen lock']],
  ['known device, no reasons', { device: device('known') }, false, ['device-unauthorized: needs a device at level managed; this device is known']],
  ['no device', { device: device('none', { reasons: ['no client certificate'] }) }, false,
    ['device-unauthenticated: needs a device at level managed; no device was identified: no client certificate']]
]))

t.test('device ids', check({ device: { ids: ['dev-1', 'dev-2'] } }, [
  ['listed device', { device: device('known', { id: 'dev-2' }) }, true],
  ['other device', { device: device('high', { id: 'dev-9' }) }, false, ['device-unauthorized: needs one of devices dev-1, dev-2; this device is dev-9']],
  ['no device', { device: device('none') }, false, ['device-unauthenticated: needs one of devices dev-1, dev-2; no device was identified']]
]))

t.test('device trust and ids together', check({ device: { trust: 'managed', ids: 'dev-1' } }, [
  ['both', { device: device('managed', { id: 'dev-1' }) }, true],
  ['id only', { device: device('known', { id: 'dev-1' }) }, false],
  ['level only', { device: device('high', { id: 'dev-2' }) }, false]
]))

t.test('paths', check({ paths: ['/admin/**', '/reports/*.csv'] }, [
  ['below /admin', { path: '/admin/users/7' }, true],
  ['/admin itself', { path: '/admin' }, true],
  ['a csv report', { path: '/reports/q3.csv' }, true],
  ['* does not cross /', { path: '/reports/2024/q3.csv' }, false, ['http-path-unauthorized: only for paths /admin/**, /reports/*.csv']],
  ['case-sensitive', { path: '/Admin' }, false]
]))

t.test('methods', check({ methods: ['get', 'Head'] }, [
  ['GET', { method: 'GET' }, true],
  ['HEAD', { method: 'HEAD' }, true],
  ['lower-case from the client', { method: 'head' }, true],
  ['POST', { method: 'POST' }, false, ['http-method-unauthorized: only for methods GET, HEAD']]
]))

t.test('source_ips', check({ source_ips: ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32', '::ffff:172.16.0.0/108'] }, [
  ['IPv4 in a CIDR', { sourceIp: '10.200.3.4' }, true],
  ['IPv4 outside', { sourceIp: '11.0.0.1' }, false, ['source-ip-unauthorized: only from 10.0.0.0/8, 192.0.2.1, 2001:db8::/32, ::ffff:172.16.0.0/108']],
  ['single address', { sourceIp: '192.0.2.1' }, true],
  ['next to the single address', { sourceIp: '192.0.2.2' }, false],
  ['IPv4-mapped IPv6 counts as IPv4', { sourceIp: '::ffff:10.1.2.3' }, true],
  ['IPv4-mapped, upper case', { sourceIp: '::FFFF:10.1.2.3' }, true],
  ['IPv4-mapped outside', { sourceIp: '::ffff:11.1.2.3' }, false],
  ['IPv6 in a CIDR', { sourceIp: '2001:db8:1::5' }, true],
  ['IPv6 outside', { sourceIp: '2001:db9::1' }, false],
  ['mapped CIDR in config covers plain IPv4', { sourceIp: '172.16.5.5' }, true],
  ['mapped CIDR in config, outside', { sourceIp: '172.32.0.1' }, false],
  ['empty address', { sourceIp: '' }, false],
  ['garbage', { sourceIp: 'not-an-ip' }, false],
  ['zone id', { sourceIp: 'fe80::1%eth0' }, false]
]))

t.test('source_ips: IPv6 loopback', check({ source_ips: '::1' }, [
  ['::1', { sourceIp: '::1' }, true],
  ['127.0.0.1 is not ::1', { sourceIp: '127.0.0.1' }, false]
]))

t.test('keys in one condition are ANDed', check({ groups: 'sre', methods: 'POST', paths: '/deploy/**' }, [
  ['all three', { identity: user({ groups: ['sre'] }), method: 'POST', path: '/deploy/x' }, true],
  ['wrong method', { identity: user({ groups: ['sre'] }), method: 'GET', path: '/deploy/x' }, false],
  ['explanations list each unmet key', { identity: user({ groups: [] }), method: 'GET', path: '/x' }, false, [
    'groups-unauthorized: needs group sre (member of: none)',
    'http-path-unauthorized: only for paths /deploy/**',
    'http-method-unauthorized: only for methods POST'
  ]]
]))
