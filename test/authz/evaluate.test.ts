import t from 'tap'
import { evaluate, explain } from '../../src/authz/index.js'
import { compileApp, device, request, user } from './fixtures.js'

// The example app of SPEC "Config file".
const wiki = compileApp({
  public_paths: ['/healthz', '/static/**'],
  rules: [
    { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
    { name: 'engineers-on-managed-devices', allow: { groups: ['engineering'], device: { trust: 'managed' } } },
    { name: 'staff-can-read', allow: { domains: ['example.com'], methods: ['GET', 'HEAD'] } }
  ]
})

const outsider = user({ email: 'eve@elsewhere.org' })
const engineer = user({ email: 'eng@elsewhere.org', groups: ['engineering'] })
const contractorEngineer = user({ email: 'c@example.com', groups: ['engineering', 'contractors'] })
const staff = user({ email: 'alice@example.com' })

t.test('SPEC example rules: allow/deny matrix', async (t) => {
  const cases: [string, Parameters<typeof request>[0], string, string][] = [
    // [what, request, decision, rule]
    ['anonymous public path', { identity: null, path: '/healthz' }, 'allow', 'public-path'],
    ['anonymous public path, trailing slash', { identity: null, path: '/healthz/' }, 'allow', 'public-path'],
    ['anonymous below a public path', { identity: null, path: '/healthz/x' }, 'unauthenticated', 'authentication-required'],
    ['anonymous public glob', { identity: null, path: '/static/css/app.css' }, 'allow', 'public-path'],
    ['anonymous public glob root', { identity: null, path: '/static' }, 'allow', 'public-path'],
    ['anonymous public glob is case-sensitive', { identity: null, path: '/Static/app.css' }, 'unauthenticated', 'authentication-required'],
    ['anonymous POST to a public path', { identity: null, method: 'POST', path: '/healthz' }, 'allow', 'public-path'],
    ['anonymous elsewhere', { identity: null, path: '/' }, 'unauthenticated', 'authentication-required'],
    ['signed-in user on a public path, even one a deny rule would catch',
      { identity: contractorEngineer, path: '/static/admin' }, 'allow', 'public-path'],
    ['staff reads', { identity: staff, path: '/page' }, 'allow', 'staff-can-read'],
    ['staff HEAD', { identity: staff, method: 'HEAD', path: '/page' }, 'allow', 'staff-can-read'],
    ['staff lower-case method', { identity: staff, method: 'get', path: '/page' }, 'allow', 'staff-can-read'],
    ['staff cannot write', { identity: staff, method: 'POST', path: '/page' }, 'deny', 'default-deny'],
    ['staff with an unverified email', { identity: user({ email: 'alice@example.com', email_verified: false }) }, 'deny', 'default-deny'],
    ['staff without email_verified', { identity: user({ email: 'alice@example.com', email_verified: undefined }) }, 'deny', 'default-deny'],
    ['staff domain in upper case', { identity: user({ email: 'Alice@EXAMPLE.COM' }) }, 'allow', 'staff-can-read'],
    ['two @ never match a domain', { identity: user({ email: 'eve@evil.org@example.com' }) }, 'deny', 'default-deny'],
    ['a subdomain is not the domain', { identity: user({ email: 'eve@evil.example.com' }) }, 'deny', 'default-deny'],
    ['a suffix is not the domain', { identity: user({ email: 'eve@notexample.com' }) }, 'deny', 'default-deny'],
    ['outsider', { identity: outsider }, 'deny', 'default-deny'],
    ['engineer on a managed device writes', { identity: engineer, device: device('managed'), method: 'POST' }, 'allow', 'engineers-on-managed-devices'],
    ['engineer on a high device', { identity: engineer, device: device('high'), method: 'DELETE' }, 'allow', 'engineers-on-managed-devices'],
    ['engineer on a known device', { identity: engineer, device: device('known'), method: 'POST' }, 'deny', 'default-deny'],
    ['engineer without a device', { identity: engineer, method: 'POST' }, 'deny', 'default-deny'],
    ['engineer in admin', { identity: engineer, device: device('managed'), path: '/admin/users' }, 'allow', 'engineers-on-managed-devices'],
    ['deny overrides allow: contractor engineer in /admin/users',
      { identity: contractorEngineer, device: device('high'), path: '/admin/users' }, 'deny', 'no-contractors-in-admin'],
    ['deny covers /admin itself', { identity: contractorEngineer, device: device('high'), path: '/admin' }, 'deny', 'no-contractors-in-admin'],
    ['deny covers /admin/', { identity: contractorEngineer, device: device('high'), path: '/admin/' }, 'deny', 'no-contractors-in-admin'],
    ['deny is not a prefix match', { identity: contractorEngineer, device: device('high'), path: '/administrator' }, 'allow', 'engineers-on-managed-devices'],
    ['contractor outside admin falls through to allow', { identity: contractorEngineer, path: '/wiki' }, 'allow', 'staff-can-read']
  ]
  for (const [what, input, decision, rule] of cases) {
    const d = evaluate(wiki, request(input))
    t.same([d.decision, d.rule], [decision, rule], what)
  }
})

t.test('reasons', async (t) => {
  t.test('a matched deny rule says what matched', async (t) => {
    const d = evaluate(wiki, request({ identity: contractorEngineer, path: '/admin/users' }))
    t.same(d.reasons, ['no-contractors-in-admin: member of contractors on /admin/**'])
  })
  t.test('default deny lists what the applicable allow rules lacked', async (t) => {
    const d = evaluate(wiki, request({
      identity: engineer,
      method: 'POST',
      device: device('known', { reasons: ['disk not encrypted'] })
    }))
    // staff-can-read is about GET and HEAD only, so it is not part of the answer to a POST.
    t.same(d.reasons, ['engineers-on-managed-devices: device-unauthorized: needs a device at level managed; this device is known: disk not encrypted'])
  })
  t.test('default deny with several applicable rules', async (t) => {
    const d = evaluate(wiki, request({ identity: user({ email: 'bob@example.com', email_verified: false, groups: ['contractors'] }) }))
    t.same(d.reasons, [
      'engineers-on-managed-devices: groups-unauthorized: needs group engineering (member of: contractors)',
      'engineers-on-managed-devices: device-unauthenticated: needs a device at level managed; no device was identified',
      'staff-can-read: email-unverified: needs a verified email in domain example.com (the IdP does not say the email is verified)'
    ])
  })
  t.test('when no allow rule is about the request, all of them explain', async (t) => {
    const app = compileApp({
      rules: [
        { name: 'api-clients', allow: { groups: ['api'], paths: ['/api/**'] } },
        { name: 'readers', allow: { authenticated: true, methods: ['GET'] } }
      ]
    })
    const d = evaluate(app, request({ method: 'PUT', path: '/other' }))
    t.same(d.reasons, [
      'api-clients: groups-unauthorized: needs group api (member of: none)',
      'api-clients: http-path-unauthorized: only for paths /api/**',
      'readers: http-method-unauthorized: only for methods GET'
    ])
  })
  t.test('an app without allow rules denies everything and says so', async (t) => {
    const app = compileApp({ rules: [{ name: 'block', deny: { groups: ['x'] } }] })
    t.same(evaluate(app, request()), { decision: 'deny', rule: 'default-deny', reasons: ['no-allow-rule: this app has no allow rule'] })
  })
  t.test('unauthenticated', async (t) => {
    t.same(evaluate(wiki, request({ identity: null })), {
      decision: 'unauthenticated', rule: 'authentication-required', reasons: ['user-unauthenticated: needs a signed-in user']
    })
  })
  t.test('allow', async (t) => {
    t.same(evaluate(wiki, request({ identity: staff })), { decision: 'allow', rule: 'staff-can-read', reasons: [] })
  })
})

t.test('first matching rule of each effect decides, in config order', async (t) => {
  const app = compileApp({
    rules: [
      { name: 'allow-a', allow: { groups: ['a'] } },
      { name: 'deny-b', deny: { groups: ['b'] } },
      { name: 'allow-all', allow: { authenticated: true } },
      { name: 'deny-c', deny: { groups: ['c'] } }
    ]
  })
  t.equal(evaluate(app, request({ identity: user({ groups: ['a'] }) })).rule, 'allow-a')
  t.equal(evaluate(app, request({ identity: user({ groups: ['a', 'c', 'b'] }) })).rule, 'deny-b', 'a later deny beats an earlier allow')
  t.equal(evaluate(app, request({ identity: user({ groups: ['c'] }) })).rule, 'deny-c')
  t.equal(evaluate(app, request({ identity: user() })).rule, 'allow-all')
})

t.test('allow decisions are made once per rule and shared: frozen, so no request can change another\'s', async (t) => {
  const cases = [
    ['public path', { path: '/static/app.css' }, 'public-path'],
    ['allow rule', { identity: staff, method: 'GET', path: '/docs' }, 'staff-can-read']
  ] as const
  for (const [name, input, rule] of cases) {
    const a = evaluate(wiki, request(input))
    const b = evaluate(wiki, request({ ...input, path: `${input.path}/other` }))
    t.same(a, { decision: 'allow', rule, reasons: [] }, name)
    t.equal(a, b, `${name}: one object for both requests`)
    t.ok(Object.isFrozen(a) && Object.isFrozen(a.reasons), `${name}: frozen`)
    t.throws(() => { a.reasons.push('x') }, TypeError, `${name}: its reasons cannot grow`)
  }
  const denied = evaluate(wiki, request({ identity: outsider, method: 'GET', path: '/docs' }))
  t.not(denied, evaluate(wiki, request({ identity: outsider, method: 'GET', path: '/docs' })), 'a denial (with its reasons) is made per request')
})

t.test('all_of / any_of / not nesting', async (t) => {
  const app = compileApp({
    rules: [
      {
        name: 'nested',
        allow: {
          any_of: [
            { groups: ['sre'] },
            { all_of: [{ groups: ['engineering'] }, { device: { trust: 'high' } }] }
          ],
          not: { source_ips: ['198.51.100.0/24'] }
        }
      },
      { name: 'not-blocked', deny: { not: { any_of: [{ domains: ['example.com'] }, { users: ['svc-robot'] }] } } }
    ]
  })
  const cases: [string, Parameters<typeof request>[0], string][] = [
    ['sre from anywhere', { identity: user({ groups: ['sre'] }) }, 'nested'],
    ['sre from the blocked network', { identity: user({ groups: ['sre'] }), sourceIp: '198.51.100.9' }, 'default-deny'],
    ['sre from the blocked network, IPv4-mapped', { identity: user({ groups: ['sre'] }), sourceIp: '::ffff:198.51.100.9' }, 'default-deny'],
    ['engineer on a high device', { identity: user({ groups: ['engineering'] }), device: device('high') }, 'nested'],
    ['engineer on a managed device', { identity: user({ groups: ['engineering'] }), device: device('managed') }, 'default-deny'],
    ['high device without the group', { identity: user({ groups: ['sales'] }), device: device('high') }, 'default-deny'],
    ['outsider denied by not(any_of)', { identity: user({ email: 'x@other.org', groups: ['sre'] }) }, 'not-blocked'],
    ['robot by sub passes the not(any_of)', { identity: user({ sub: 'svc-robot', email: undefined, groups: ['sre'] }) }, 'nested']
  ]
  for (const [what, input, rule] of cases) t.equal(evaluate(app, request(input)).rule, rule, what)

  const d = evaluate(app, request({ identity: user({ groups: ['engineering'] }), device: device('known', { reasons: ['no screen lock'] }), sourceIp: '198.51.100.1' }))
  t.same(d.reasons, [
    'nested: any-of-unmet: needs one of: needs group sre (member of: engineering) or needs a device at level high; this device is known: no screen lock',
    'nested: excluded: must not be from 198.51.100.0/24'
  ])
  const d2 = evaluate(app, request({ identity: user({ email: 'x@other.org' }) }))
  t.same(d2.reasons, ['not-blocked: not (with a verified email in domain example.com or as user svc-robot)'])
})

t.test('explain lists every rule in order', async (t) => {
  const e = explain(wiki, request({ identity: contractorEngineer, device: device('managed'), path: '/admin', method: 'POST' }))
  t.same(e, [
    { rule: 'no-contractors-in-admin', effect: 'deny', matched: true, unmet: [] },
    { rule: 'engineers-on-managed-devices', effect: 'allow', matched: true, unmet: [] },
    { rule: 'staff-can-read', effect: 'allow', matched: false, unmet: ['http-method-unauthorized: only for methods GET, HEAD'] }
  ])
  const anonymous = explain(wiki, request({ identity: null }))
  t.same(anonymous[1]?.unmet, [
    'groups-unauthorized: needs group engineering (member of: none)',
    'device-unauthenticated: needs a device at level managed; no device was identified'
  ], 'explain copes without identity')
})
