import t from 'tap'
import { BASE, errorsOf, mustLoad } from './helpers.js'

const withAuth = (url: string): string => BASE.replace('  url: http://auth.localhost:8080', () => `  url: ${url}`)
const withIssuer = (url: string): string => BASE.replace('  issuer: https://idp.example.com', () => `  issuer: ${url}`)
const withApp = (fields: string): string => BASE.replace(/    from: .*\n    to: .*\n/, () => fields)
/** BASE plus a second app (lines 13-16). */
const twoApps = (name: string, from: string): string => BASE + `  - name: ${name}
    from: ${from}
    to: http://127.0.0.1:9002
`
/** BASE plus rules for the app, starting at line 13. */
const withRules = (rules: string): string => BASE + '    rules:\n' + rules

t.test('authenticate.url must be an origin', async (t) => {
  t.same(errorsOf(withAuth('https://auth.example.com/')), [], 'a trailing / is fine')
  t.same(errorsOf(withAuth('https://auth.example.com:8443')), [])
  for (const bad of ['http://auth.localhost:8080/sso', 'http://auth.localhost:8080?x=1', 'http://auth.localhost:8080/#top',
    'http://user:pw@auth.localhost:8080', 'ftp://auth.localhost', 'auth.localhost:8080', 'http://', 'https://auth.example.com/ ']) {
    t.same(errorsOf(withAuth(JSON.stringify(bad))), [
      `2:8 authenticate.url: must be an origin: http(s)://host[:port], without path, query, fragment or credentials; got ${JSON.stringify(bad)}`
    ], bad)
  }
})

t.test('idp.issuer must be https unless its host is loopback', async (t) => {
  for (const good of ['https://idp.example.com/realms/corp', 'http://localhost:9000', 'http://idp.localhost:8080/oidc',
    'http://127.0.0.1:9000', 'http://127.8.9.10', 'http://[::1]:9000/']) {
    t.same(errorsOf(withIssuer(good)), [], good)
  }
  t.same(errorsOf(withIssuer('http://idp.example.com')),
    ['4:11 idp.issuer: must use https (http:// only for loopback hosts such as localhost or 127.0.0.1); got "http://idp.example.com"'])
  t.same(errorsOf(withIssuer('http://localhost.example.com')),
    ['4:11 idp.issuer: must use https (http:// only for loopback hosts such as localhost or 127.0.0.1); got "http://localhost.example.com"'])
  t.same(errorsOf(withIssuer('http://128.0.0.1')),
    ['4:11 idp.issuer: must use https (http:// only for loopback hosts such as localhost or 127.0.0.1); got "http://128.0.0.1"'])
  t.same(errorsOf(withIssuer('idp.example.com')), ['4:11 idp.issuer: must be an https URL; got "idp.example.com"'])
  t.same(errorsOf(withIssuer('https://idp.example.com/?tenant=1')),
    ['4:11 idp.issuer: must not have a query, fragment or credentials; got "https://idp.example.com/?tenant=1"'])
})

t.test('apps[].from must be an origin, unique, and not the authenticate origin', async (t) => {
  t.same(errorsOf(withApp('    from: http://wiki.localhost:8080/wiki\n    to: http://127.0.0.1:9001\n')),
    ['11:11 apps[0].from: must be an origin: http(s)://host[:port], without path, query, fragment or credentials; got "http://wiki.localhost:8080/wiki"'])
  t.same(errorsOf(withApp('    from: wiki.localhost\n    to: http://127.0.0.1:9001\n')),
    ['11:11 apps[0].from: must be an origin: http(s)://host[:port], without path, query, fragment or credentials; got "wiki.localhost"'])
  t.same(errorsOf(withApp('    from: http://auth.localhost:8080/\n    to: http://127.0.0.1:9001\n')),
    ['11:11 apps[0].from: must differ from the authenticate origin http://auth.localhost:8080'])
  t.same(errorsOf(twoApps('wiki2', 'http://WIKI.localhost:8080/')),
    ['14:11 apps[1].from: origin http://wiki.localhost:8080 is already used by apps[0]'], 'compared as origins')
  t.same(errorsOf(BASE.replace('http://wiki.localhost:8080', 'https://wiki.example.com') + `  - name: wiki2
    from: https://wiki.example.com:443
    to: http://127.0.0.1:9002
`), ['14:11 apps[1].from: origin https://wiki.example.com is already used by apps[0]'], 'default port')
  t.same(errorsOf(twoApps('wiki2', 'https://wiki.localhost:8080')), [], 'another scheme is another origin')
})

t.test('apps[].to must be an http(s) URL; app names are unique', async (t) => {
  t.same(errorsOf(withApp('    from: http://wiki.localhost:8080\n    to: http://127.0.0.1:9001/base/path?x=1\n')), [])
  t.same(errorsOf(withApp('    from: http://wiki.localhost:8080\n    to: ftp://127.0.0.1\n')),
    ['12:9 apps[0].to: must be an http(s) URL; got "ftp://127.0.0.1"'])
  t.same(errorsOf(withApp('    from: http://wiki.localhost:8080\n    to: 127.0.0.1:9001\n')),
    ['12:9 apps[0].to: must be an http(s) URL; got "127.0.0.1:9001"'])
  t.same(errorsOf(twoApps('wiki', 'http://other.localhost:8080')), ['13:11 apps[1].name: duplicate app name "wiki" (also apps[0])'])
})

t.test('trusted_proxies and source_ips are IPs or CIDRs', async (t) => {
  t.same(errorsOf(BASE + 'trusted_proxies: [10.0.0.0/8, 192.168.1.1, "::1", "fd00::/8", 10.0.0.0/33, bogus, 1.2.3.4/, "fd00::/129"]\n'), [
    '13:63 trusted_proxies[4]: invalid CIDR or IP address "10.0.0.0/33"',
    '13:76 trusted_proxies[5]: invalid CIDR or IP address "bogus"',
    '13:83 trusted_proxies[6]: invalid CIDR or IP address "1.2.3.4/"',
    '13:93 trusted_proxies[7]: invalid CIDR or IP address "fd00::/129"'
  ])
  t.same(errorsOf(withRules(`      - name: office
        allow: { source_ips: [10.0.0.0/8, 300.1.1.1] }
      - name: single
        allow: { source_ips: 10.0.0.0/99 }
      - name: nested
        deny: { not: { all_of: [{ source_ips: [nope] }] } }
`)), [
    '15:43 apps[0].rules[0].allow.source_ips[1]: invalid CIDR or IP address "300.1.1.1"',
    '17:30 apps[0].rules[1].allow.source_ips: invalid CIDR or IP address "10.0.0.0/99"',
    '19:48 apps[0].rules[2].deny.not.all_of[0].source_ips[0]: invalid CIDR or IP address "nope"'
  ])
})

t.test('device trust levels: unique names, none reserved, rules name known levels', async (t) => {
  const levels = `device_trust:
  levels:
    - name: known
      require: { enrolled: true }
    - name: none
      require: { enrolled: true }
    - name: known
      require: { managed: true }
`
  t.same(errorsOf(BASE + levels), [
    '17:13 device_trust.levels[1].name: "none" is reserved for requests without a device identity',
    '19:13 device_trust.levels[2].name: duplicate level name "known" (also device_trust.levels[0])'
  ])
  const good = `device_trust:
  levels:
    - name: known
      require: { enrolled: true }
    - name: managed
      require: { managed: true }
`
  t.same(errorsOf(withRules(`      - name: a
        allow: { device: { trust: managed } }
      - name: b
        allow: { device: { trust: none } }
`) + good), [])
  t.same(errorsOf(withRules(`      - name: a
        allow: { device: { trust: high } }
      - name: b
        allow:
          any_of:
            - groups: [x]
            - not: { all_of: [{ device: { trust: Managed } }] }
`) + good), [
    '15:35 apps[0].rules[0].allow.device.trust: unknown device trust level "high" (known: none, known, managed)',
    '20:50 apps[0].rules[1].allow.any_of[1].not.all_of[0].device.trust: unknown device trust level "Managed" (known: none, known, managed)'
  ])
  t.same(errorsOf(withRules(`      - name: a
        allow: { device: { trust: known } }
`)), ['15:35 apps[0].rules[0].allow.device.trust: unknown device trust level "known" (known: none)'], 'no levels configured')
})

t.test('rules: exactly one of allow/deny, names unique within an app', async (t) => {
  t.same(errorsOf(withRules(`      - name: both
        allow: { groups: [a] }
        deny: { groups: [b] }
      - name: neither
      - name: both
        deny: { groups: [b] }
`)), [
    '16:9 apps[0].rules[0]: a rule has exactly one of allow or deny, not both',
    '17:9 apps[0].rules[1]: a rule needs exactly one of allow or deny',
    '18:15 apps[0].rules[2].name: duplicate rule name "both" in app "wiki" (also rules[0])'
  ])
  t.same(errorsOf(withRules(`      - name: same
        allow: { groups: [a] }
`) + `  - name: other
    from: http://other.localhost:8080
    to: http://127.0.0.1:9002
    rules:
      - name: same
        allow: { groups: [a] }
`), [], 'the same rule name in two apps is fine')
})

t.test('several semantic errors at once', async (t) => {
  const text = `authenticate:
  url: http://auth.localhost:8080/login
idp:
  issuer: http://idp.example.com
  client_id: moatless
  client_secret: s3cret
session:
  secret: 0123456789abcdef0123456789abcdef
trusted_proxies: [10.0.0.0/8, everyone]
apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: wiki
    rules:
      - name: r
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9002
`
  t.same(errorsOf(text), [
    '2:8 authenticate.url: must be an origin: http(s)://host[:port], without path, query, fragment or credentials; got "http://auth.localhost:8080/login"',
    '4:11 idp.issuer: must use https (http:// only for loopback hosts such as localhost or 127.0.0.1); got "http://idp.example.com"',
    '9:31 trusted_proxies[1]: invalid CIDR or IP address "everyone"',
    '13:9 apps[0].to: must be an http(s) URL; got "wiki"',
    '15:9 apps[0].rules[0]: a rule needs exactly one of allow or deny',
    '16:11 apps[1].name: duplicate app name "wiki" (also apps[0])',
    '17:11 apps[1].from: origin http://wiki.localhost:8080 is already used by apps[0]'
  ])
})

t.test('globs are left to the rules compiler, which can locate them', async (t) => {
  const loaded = mustLoad(withRules(`      - name: r
        allow: { paths: ["/a/***/b", "["] }
`))
  t.same(loaded.config.apps[0]!.rules[0]!.allow!.paths, ['/a/***/b', '['])
  t.same(loaded.locate(['apps', 0, 'rules', 0, 'allow', 'paths', 1]), { line: 15, col: 38 })
})
