import t from 'tap'
import { formatErrors, loadConfigText, type ConfigError } from '../../src/config/index.js'
import { BASE, errorsOf, mustLoad } from './helpers.js'

t.test('unknown keys are reported at the key itself', async (t) => {
  t.same(errorsOf(BASE + 'lisen:\n  port: 80\n'), ['13:1 unknown key "lisen" at top level'])
  t.same(errorsOf(`listen:
  adress: 0.0.0.0
  port: 80
` + BASE), ['2:3 unknown key "adress" in listen'])
  t.same(errorsOf(BASE + `    rules:
      - name: r1
        allow:
          groups: [eng]
          any_of:
            - emails: [a@example.com]
            - not: { group: admins }
`), ['19:22 unknown key "group" in apps[0].rules[0].allow.any_of[1].not'], 'deep inside a rule condition, in a flow mapping')
  t.same(errorsOf(BASE + `    rules:
      - name: r1
        allow: { device: { trust: managed, level: high } }
`), ['15:44 unknown key "level" in apps[0].rules[0].allow.device'])
  t.same(errorsOf(BASE + `    rules:
      - name: r1
        allow: { groups: eng }
        when: always
`), ['16:9 unknown key "when" in apps[0].rules[0]'])
  t.same(errorsOf(BASE + `device_trust:
  levels:
    - name: known
      require: { enroled: true }
`), ['16:18 unknown key "enroled" in device_trust.levels[0].require'])
})

t.test('wrong types', async (t) => {
  t.same(errorsOf(BASE + `listen:
  port: "8080"
admin:
  port: 70000
trusted_proxies: 10.0.0.0/8
`), [
    '14:9 listen.port: expected a number, got string "8080"',
    '16:9 admin.port: must be <= 65535',
    '17:18 trusted_proxies: expected a list, got string "10.0.0.0/8"'
  ])
  t.same(errorsOf(BASE + `    websockets: yes
    public_paths: /static/**
    rules:
      - name: r
        allow: { groups: 3, authenticated: false, claims: { level: { x: 1 } } }
`), [
    '13:17 apps[0].websockets: expected a boolean (true/false), got string "yes"',
    '14:19 apps[0].public_paths: expected a list, got string "/static/**"',
    '17:26 apps[0].rules[0].allow.groups: expected a string or a list, got number 3',
    '17:44 apps[0].rules[0].allow.authenticated: expected true, got boolean false',
    '17:61 apps[0].rules[0].allow.claims.level: expected a string or a number or a boolean (true/false) or a list, got a mapping'
  ])
  t.same(errorsOf(BASE.replace('  - name: wiki', '  - name: Wiki_1').replace('secret: 0123456789abcdef0123456789abcdef', 'secret: short')), [
    '8:11 session.secret must be at least 32 characters',
    '10:11 apps[0].name: app name must match [a-z0-9-]+'
  ])
  t.same(errorsOf(BASE.replace('client_secret: s3cret', 'client_secret: 123456789')), ['6:18 idp.client_secret: expected a string, got a number'],
    'a secret value is never echoed')
  t.same(errorsOf(BASE + 'apps: {}\n'), ['13:1 duplicate key "apps"'])
  t.same(errorsOf(BASE.replace(/apps:[\s\S]*/, 'apps:\n  name: wiki\n')), ['9:1 apps: expected a list, got a mapping'])
  t.same(errorsOf(BASE.replace('  client_id: moatless', '  client_id: ""')), ['5:14 idp.client_id: must not be empty'])
})

t.test('missing required keys are reported at the parent', async (t) => {
  t.same(errorsOf(BASE.replace('  client_secret: s3cret\n', '')), ['3:1 missing required key "client_secret" in idp'])
  t.same(errorsOf(BASE.replace('session:\n  secret: 0123456789abcdef0123456789abcdef\n', '')), ['1:1 missing required key "session"'])
  t.same(errorsOf(BASE.replace('    to: http://127.0.0.1:9001\n', '')), ['10:5 missing required key "to" in apps[0]'])
  t.same(errorsOf(BASE + `    rules:
      - allow: { groups: eng }
`), ['14:9 missing required key "name" in apps[0].rules[0]'])
  t.same(errorsOf(BASE + `listen:
  tls: { cert: a.crt }
store:
  redis: { sentinels: [{ host: s1, port: 26379 }] }
`), [
    '14:3 missing required key "key" in listen.tls',
    '16:3 missing required key "name" in store.redis'
  ])
  t.same(errorsOf(BASE.replace('  client_id: moatless', '  client_id:')), ['5:3 idp.client_id: expected a string, got null'], 'an empty value is not a missing key')
})

t.test('bad durations', async (t) => {
  t.same(errorsOf(BASE + `    timeout: 30x
    session_max_age: 30
session:
`), ['15:1 duplicate key "session"'])
  t.same(errorsOf(BASE.replace('  secret: 0123456789abcdef0123456789abcdef\n', `  secret: 0123456789abcdef0123456789abcdef
  lifetime: 12 h
  idle_timeout: -5m
  refresh_interval: ""
`) + `    timeout: 30x
    session_max_age: 30
`), [
    '9:13 session.lifetime: invalid duration "12 h" (use e.g. 250ms, 30s, 5m, 12h, 7d)',
    '10:17 session.idle_timeout: invalid duration "-5m" (use e.g. 250ms, 30s, 5m, 12h, 7d)',
    '11:21 session.refresh_interval: invalid duration "" (use e.g. 250ms, 30s, 5m, 12h, 7d)',
    '16:14 apps[0].timeout: invalid duration "30x" (use e.g. 250ms, 30s, 5m, 12h, 7d)',
    '17:22 apps[0].session_max_age: invalid duration 30 (use e.g. 250ms, 30s, 5m, 12h, 7d)'
  ])
})

t.test('${VAR} substitution', async (t) => {
  const text = BASE.replace('  client_secret: s3cret', '  client_secret: ${CLIENT_SECRET}') + `listen:
  address: \${ADDR}
  port: \${PORT}
admin:
  port: "\${PORT}"
`
  t.same(errorsOf(text, { CLIENT_SECRET: 'x', ADDR: '::', PORT: '8443' }), ['17:9 admin.port: expected a number, got string "8443"'],
    'a quoted ${PORT} stays a string')
  const ok = mustLoad(text.replace('"${PORT}"', '${ADMIN_PORT}'), { CLIENT_SECRET: 'x', ADDR: '::', PORT: '8443', ADMIN_PORT: '0x10' })
  t.equal(ok.config.listen.port, 8443, 'a plain ${PORT} becomes a number')
  t.equal(ok.config.admin.port, 16, 'core-schema hex')
  t.equal(ok.config.listen.address, '::')

  t.same(errorsOf(text, { ADDR: 'a' }), [
    '6:18 idp.client_secret: environment variable CLIENT_SECRET is not set',
    '15:9 listen.port: environment variable PORT is not set',
    '17:9 admin.port: environment variable PORT is not set'
  ], 'an unset variable is an error at its scalar (and only that error)')

  const booleans = mustLoad(BASE + '    websockets: ${WS}\n    preserve_host: ${PH}\n', { WS: 'true', PH: 'False' })
  t.equal(booleans.config.apps[0]!.websockets, true)
  t.equal(booleans.config.apps[0]!.preserve_host, false)

  const mixed = mustLoad(BASE.replace('    to: http://127.0.0.1:9001', '    to: http://${HOST}:${PORT}/base')
    .replace('client_secret: s3cret', () => 'client_secret: "a$${B}c-$$-${EMPTY}-$x"'), { HOST: '10.0.0.1', PORT: '9001', EMPTY: '' })
  t.equal(mixed.config.apps[0]!.to, 'http://10.0.0.1:9001/base', 'substitution inside a larger string')
  t.equal(mixed.config.idp.client_secret, 'a${B}c-$$--$x', '$${ is a literal ${; other $ are kept; empty is set')

  t.same(errorsOf(BASE.replace('client_secret: s3cret', 'client_secret: ${1BAD}'), {}),
    ['6:18 idp.client_secret: invalid variable reference "${1BAD}" (use ${NAME}; write $${ for a literal ${)'])
  t.same(errorsOf(BASE.replace('client_secret: s3cret', 'client_secret: abc${OPEN'), {}),
    ['6:18 idp.client_secret: unterminated "${" (write $${ for a literal ${)'])
  t.same(errorsOf(BASE.replace('client_id: moatless', '${KEY}: moatless'), { KEY: 'client_id' }), [
    '3:1 missing required key "client_id" in idp',
    '5:3 unknown key "${KEY}" in idp'
  ], 'keys are not substituted')
})

t.test('an environment value can never inject YAML structure', async (t) => {
  const evil = 'x\nlisten: { port: 1 }\n- [a, {b: c}]\n"unterminated: &anchor *alias'
  const flow = '[a, b]'
  const map = '{ port: 1 }'
  const r = mustLoad(BASE.replace('client_secret: s3cret', 'client_secret: ${EVIL}')
    .replace('client_id: moatless', 'client_id: ${FLOW}')
    .replace('  issuer: https://idp.example.com', '  issuer: https://idp.example.com\n  groups_claim: "${MAP}"'), { EVIL: evil, FLOW: flow, MAP: map })
  t.equal(r.config.idp.client_secret, evil)
  t.equal(r.config.idp.client_id, flow, 'even a plain exact ${VAR} resolves only as a scalar')
  t.equal(r.config.idp.groups_claim, map)
  t.same(r.config.listen, { address: '0.0.0.0', port: 8080 })
  t.same(errorsOf(BASE + 'listen:\n  port: ${PORT}\n', { PORT: '[8080]' }), ['14:9 listen.port: expected a number, got string "[8080]"'])
})

t.test('YAML syntax errors and duplicate keys', async (t) => {
  t.same(errorsOf(BASE.replace('  client_id: moatless', '  client_id: moatless\n  client_id: other')), ['6:3 duplicate key "client_id" in idp'])
  t.same(errorsOf(BASE + '    to: http://127.0.0.1:9002\n'), ['13:5 duplicate key "to" in apps[0]'])
  t.same(errorsOf(BASE + `    rules:
      - name: r
        allow: { groups: [a], groups: [b] }
`), ['15:31 duplicate key "groups" in apps[0].rules[0].allow'])
  t.same(errorsOf(BASE.replace('  client_id: moatless', '  client_id: [moatless')),
    ['5:14 invalid YAML: flow sequence opened here is not closed with ] (or a continuation line is not indented enough)'], 'an unclosed [ is reported where it opens')
  t.same(errorsOf(BASE.replace('  client_id: moatless', ' client_id: moatless')), ['5:1 invalid YAML: All mapping items must start at the same column'])
  t.same(errorsOf(BASE + 'foo: "unterminated\n'), ['13:6 invalid YAML: missing closing " (quoted string opened here)'], 'an unclosed quote is reported where it opens')
  t.same(errorsOf(BASE + '---\nother: doc\n'), ['13:1 invalid YAML: Source contains multiple documents; please use YAML.parseAllDocuments()'])
  t.same(errorsOf(BASE + 'x: !custom 3\n'), ['13:4 invalid YAML: Unresolved tag: !custom'])
  t.same(errorsOf(`listen:
  port: 1
  port: 2
session:
  secret: [unclosed
`), ['3:3 duplicate key "port" in listen', '5:11 invalid YAML: flow sequence opened here is not closed with ] (or a continuation line is not indented enough)'],
  'duplicates before the first syntax error and that error')
})

t.test('several errors in one file are all reported, in line order', async (t) => {
  const text = `listen:
  port: eighty
  bind: 0.0.0.0
authenticate:
  url: http://auth.localhost:8080
idp:
  issuer: https://idp.example.com
  client_id: moatless
session:
  secret: \${SECRET}
  lifetime: forever
apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    rules:
      - name: r
        allow: { groups: [eng], path: /x }
`
  t.same(errorsOf(text), [
    '2:9 listen.port: expected a number, got string "eighty"',
    '3:3 unknown key "bind" in listen',
    '6:1 missing required key "client_secret" in idp',
    '10:11 session.secret: environment variable SECRET is not set',
    '11:13 session.lifetime: invalid duration "forever" (use e.g. 250ms, 30s, 5m, 12h, 7d)',
    '18:33 unknown key "path" in apps[0].rules[0].allow'
  ])
})

t.test('formatErrors', async (t) => {
  const errors: ConfigError[] = [
    { file: 'm.yaml', line: 10, col: 3, message: 'b' },
    { file: 'm.yaml', line: 2, col: 9, message: 'a\nsecond line' },
    { file: 'm.yaml', line: 10, col: 1, message: 'c' }
  ]
  t.equal(formatErrors(errors), 'm.yaml:2:9 a second line\nm.yaml:10:1 c\nm.yaml:10:3 b')
  t.equal(formatErrors([]), '')
  const r = loadConfigText('listen:\n  prot: 1\nx: 1\n', 'conf/moatless.yaml', {})
  t.equal(r.ok, false)
  if (!r.ok) {
    t.equal(formatErrors(r.errors), [
      'conf/moatless.yaml:1:1 missing required key "authenticate"',
      'conf/moatless.yaml:1:1 missing required key "idp"',
      'conf/moatless.yaml:1:1 missing required key "session"',
      'conf/moatless.yaml:2:3 unknown key "prot" in listen',
      'conf/moatless.yaml:3:1 unknown key "x" at top level'
    ].join('\n'))
  }
})

t.test('odd inputs: BOM and CRLF, __proto__, alias bombs', async (t) => {
  t.same(errorsOf(('\uFEFF' + BASE + 'listen:\n  prt: 1\n').replace(/\n/g, '\r\n')), ['14:3 unknown key "prt" in listen'])
  t.same(errorsOf(BASE + '__proto__: { polluted: 1 }\n'), ['13:1 unknown key "__proto__" at top level'])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.same(errorsOf(BASE + 'x: &a [1, 2]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nz: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nw: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n'),
    ['1:1 invalid YAML: Excessive alias count indicates a resource exhaustion attack'])
  const shared = mustLoad(BASE + '    rules:\n      - name: a\n        allow: &c { groups: [x] }\n      - name: b\n        deny: *c\n')
  t.same(shared.config.apps[0]!.rules.map((r) => r.allow ?? r.deny), [{ groups: ['x'] }, { groups: ['x'] }], 'anchors and aliases work')
})
