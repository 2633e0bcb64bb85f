import t from 'tap'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { loadConfig, loadConfigText } from '../../src/config/index.js'
import { BASE, errorsOf, mustLoad } from './helpers.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url))
const FULL = join(FIXTURES, 'full.yaml')
const SECRETS = {
  MOATLESS_CLIENT_SECRET: 'client-secret-value',
  MOATLESS_SESSION_SECRET: 'a-session-secret-that-is-long-enough-1234'
}

t.test('the SPEC example config loads with durations in ms and paths resolved', async (t) => {
  const r = loadConfig(FULL, SECRETS)
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  const { config, file, dir } = r.loaded
  t.equal(file, FULL)
  t.equal(dir, dirname(FULL).replace(/\/$/, ''))
  t.same(config.listen, {
    address: '0.0.0.0',
    port: 8080,
    tls: { cert: join(dir, 'certs/proxy.crt'), key: join(dir, 'certs/proxy.key'), client_ca: join(dir, 'certs/device-ca.crt') }
  })
  t.same(config.admin, { address: '127.0.0.1', port: 9090 })
  t.same(config.trusted_proxies, [])
  t.same(config.authenticate, { url: 'http://auth.localhost:8080' })
  t.same(config.idp, {
    issuer: 'https://idp.example.com',
    client_id: 'moatless',
    client_secret: 'client-secret-value',
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    groups_claim: 'groups'
  })
  t.same(config.session, {
    secret: SECRETS.MOATLESS_SESSION_SECRET,
    lifetime: 12 * 3_600_000,
    idle_timeout: 2 * 3_600_000,
    refresh_interval: 5 * 60_000,
    cache_size: 100_000
  })
  t.same(config.store, { redis: 'redis://127.0.0.1:6379/0', key_prefix: 'moatless:', store_outage_grace: 30_000 })
  t.equal(config.signing_key, join(dir, 'keys/assertion.jwk'))
  t.equal(config.device_trust.report_max_age, 86_400_000)
  t.same(config.device_trust.levels, [
    { name: 'known', require: { enrolled: true } },
    { name: 'managed', require: { managed: true, disk_encrypted: true, screen_lock: true } },
    { name: 'high', require: { managed: true, disk_encrypted: true, screen_lock: true, firewall: true, os_min: { macos: '14.5', windows: '10.0.22631', linux: '6.1' } } }
  ])
  t.equal(config.apps.length, 1)
  const app = config.apps[0]!
  t.same(app, {
    name: 'wiki',
    from: 'http://wiki.localhost:8080',
    to: 'http://127.0.0.1:9001',
    public_paths: ['/healthz', '/static/**'],
    identity_headers: true,
    preserve_host: false,
    websockets: true,
    timeout: 30_000,
    rules: [
      { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
      { name: 'engineers-on-managed-devices', allow: { groups: ['engineering'], device: { trust: 'managed' } } },
      { name: 'staff-can-read', allow: { domains: ['example.com'], methods: ['GET', 'HEAD'] } }
    ]
  })
})

t.test('locate maps document paths to 1-based line/col', async (t) => {
  const r = loadConfig(FULL, SECRETS)
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  const { locate } = r.loaded
  t.same(locate([]), { line: 2, col: 1 }, 'root: the first key')
  t.same(locate(['listen']), { line: 2, col: 1 }, 'a mapping value: at its key')
  t.same(locate(['listen', 'port']), { line: 4, col: 9 }, 'a scalar: at the value')
  t.same(locate(['trusted_proxies']), { line: 12, col: 1 }, 'a (flow) collection value: at its key')
  t.same(locate(['apps', 0]), { line: 42, col: 5 }, 'a sequence item: at the item')
  t.same(locate(['apps', 0, 'rules', 1, 'allow']), { line: 54, col: 9 }, 'a flow mapping value: at its key')
  t.same(locate(['apps', 0, 'rules', 1, 'allow', 'groups', 0]), { line: 54, col: 27 })
  t.same(locate(['apps', 0, 'rules', 1, 'allow', 'device', 'trust']), { line: 54, col: 58 })
  t.same(locate(['apps', 0, 'rules', 0, 'deny', 'paths', 0]), { line: 52, col: 48 }, 'a quoted scalar: at its opening quote')
  t.same(locate(['apps', 0, 'public_paths', 1]), { line: 45, col: 32 })
  t.same(locate(['device_trust', 'levels', 2, 'require', 'os_min', 'linux']), { line: 40, col: 73 }, 'a flow mapping spanning lines')
  t.same(locate(['apps', 0, 'rules', 1, 'allow', 'paths', 0]), { line: 54, col: 9 }, 'missing: nearest existing ancestor')
  t.same(locate(['apps', 7, 'name']), { line: 41, col: 1 }, 'missing index: falls back to the list key')
  t.same(locate(['nope']), { line: 2, col: 1 }, 'missing top-level key: the root')
})

t.test('defaults of a minimal config', async (t) => {
  const { config } = mustLoad(BASE)
  t.same(config.listen, { address: '0.0.0.0', port: 8080 })
  t.same(config.admin, { address: '127.0.0.1', port: 9090 })
  t.same(config.trusted_proxies, [])
  t.same(config.idp.scopes, ['openid', 'email', 'profile'])
  t.equal(config.idp.groups_claim, 'groups')
  t.same(config.session, {
    secret: '0123456789abcdef0123456789abcdef', lifetime: 43_200_000, idle_timeout: 7_200_000, refresh_interval: 300_000, cache_size: 100_000
  })
  t.equal(config.store, undefined)
  t.equal(config.signing_key, undefined)
  t.same(config.device_trust, { report_max_age: 86_400_000, levels: [] })
  t.same(config.apps[0], {
    name: 'wiki', from: 'http://wiki.localhost:8080', to: 'http://127.0.0.1:9001',
    public_paths: [], identity_headers: false, preserve_host: false, websockets: false, timeout: 30_000, rules: []
  })
  t.equal(config.apps[0]!.session_max_age, undefined)
})

t.test('store defaults, redis forms, durations', async (t) => {
  const { config } = mustLoad(BASE + `store:
  redis: { sentinels: [{ host: s1, port: 26379 }], name: mymaster }
  store_outage_grace: 0
device_trust:
  report_max_age: 1h30m
`)
  t.same(config.store, { redis: { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster' }, key_prefix: 'moatless:', store_outage_grace: 0 })
  t.equal(config.device_trust.report_max_age, 5_400_000)
  const c2 = mustLoad(BASE.replace('    to: http://127.0.0.1:9001\n', '    to: http://127.0.0.1:9001\n    timeout: 250ms\n    session_max_age: 0s\n')).config
  t.equal(c2.apps[0]!.timeout, 250)
  t.equal(c2.apps[0]!.session_max_age, 0)
})

t.test('relative paths resolve against the config directory, absolute ones stay', async (t) => {
  const text = BASE + `listen:
  tls: { cert: /abs/proxy.crt, key: ../keys/proxy.key }
signing_key: assertion.jwk
`
  const { config, dir } = mustLoad(text, {}, 'conf/moatless.yaml')
  t.equal(dir, join(process.cwd(), 'conf'))
  t.same(config.listen.tls, { cert: '/abs/proxy.crt', key: join(process.cwd(), 'keys/proxy.key') })
  t.equal(config.signing_key, join(process.cwd(), 'conf/assertion.jwk'))
})

t.test('an unreadable file is one error at 1:1', async (t) => {
  const r = loadConfig(join(FIXTURES, 'does-not-exist.yaml'))
  t.same(r, { ok: false, errors: [{ file: join(FIXTURES, 'does-not-exist.yaml'), line: 1, col: 1, message: 'cannot read config file: no such file' }] })
  const d = loadConfig(FIXTURES)
  t.equal(d.ok, false)
  if (!d.ok) t.match(d.errors, [{ line: 1, col: 1, message: /^cannot read config file: / }])
})

t.test('an empty file or a non-mapping document', async (t) => {
  t.same(errorsOf(''), ['1:1 expected a mapping, got null'])
  t.same(errorsOf('- a\n- b\n'), ['1:1 expected a mapping, got a list'])
})

t.test('the file name is the one given', async (t) => {
  const r = loadConfigText('nope: 1\n', 'relative/name.yaml', {})
  t.equal(r.ok, false)
  if (!r.ok) t.equal(r.errors[0]!.file, 'relative/name.yaml')
})
