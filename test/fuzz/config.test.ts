/**
 * Property: the config loader (src/config/load.ts) never throws, whatever the text. It answers
 * with a config, or with errors that each point at a place in the file (line and column >= 1,
 * within the text) and say something — what `moatless check` prints as FILE:LINE:COL.
 * Inputs: arbitrary text, YAML-ish documents built from the config's own vocabulary and YAML's
 * syntax (anchors, tags, flow collections, block scalars, `${VAR}`), and small mutations of a
 * valid config.
 */
import fc from 'fast-check'
import t from 'tap'
import { loadConfigText, type LoadResult } from '../../src/config/index.js'

const FILE = '/etc/moatless/fuzz.yaml'
const VALID = `listen:
  address: 127.0.0.1
  port: 8080
authenticate:
  url: http://auth.localhost:8080
idp:
  issuer: https://idp.example.com
  client_id: moatless
  client_secret: \${SECRET}
session:
  secret: 0123456789abcdef0123456789abcdef
trusted_proxies: [10.0.0.0/8]
device_trust:
  levels:
    - name: known
      require: { enrolled: true }
apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    public_paths: ["/static/**"]
    rules:
      - name: no-admin
        deny: { groups: [contractors], paths: ["/admin/**"] }
      - name: staff
        allow: { domains: [example.com], methods: [GET, HEAD], device: { trust: known } }
`

/** Checks one result; returns a description of what is wrong, or null. */
function problem (text: string, r: LoadResult): string | null {
  if (r.ok) return null
  if (r.errors.length === 0) return 'not ok, but no errors'
  const lines = text.split(/\r\n|\r|\n/).length
  for (const e of r.errors) {
    if (e.file !== FILE) return `error names another file: ${e.file}`
    if (!Number.isInteger(e.line) || !Number.isInteger(e.col) || e.line < 1 || e.col < 1) return `bad position ${e.line}:${e.col}`
    if (e.line > lines + 1) return `line ${e.line} past the end (${lines} lines)`
    if (typeof e.message !== 'string' || e.message.trim() === '' || e.message.includes('\n')) return `bad message ${JSON.stringify(e.message)}`
  }
  return null
}

function check (text: string, env: NodeJS.ProcessEnv = {}): boolean {
  let r: LoadResult
  try {
    r = loadConfigText(text, FILE, env)
  } catch (err) {
    throw new Error(`loadConfigText threw on ${JSON.stringify(text)}: ${(err as Error).stack ?? String(err)}`)
  }
  const p = problem(text, r)
  if (p !== null) throw new Error(`${p} for ${JSON.stringify(text)}`)
  return true
}

const RUNS = 300

t.test('arbitrary text', async (t) => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => check(s)), { numRuns: RUNS })
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => check(s)), { numRuns: RUNS })
  t.pass(`${2 * RUNS} runs`)
})

const key = fc.constantFrom(
  'listen', 'address', 'port', 'tls', 'cert', 'key', 'client_ca', 'admin', 'trusted_proxies', 'authenticate', 'url', 'idp', 'issuer', 'client_id',
  'client_secret', 'scopes', 'groups_claim', 'session', 'secret', 'lifetime', 'idle_timeout', 'refresh_interval', 'store', 'redis', 'key_prefix',
  'store_outage_grace', 'signing_key', 'device_trust', 'report_max_age', 'levels', 'name', 'require', 'enrolled', 'managed', 'os_min', 'apps', 'from',
  'to', 'public_paths', 'identity_headers', 'preserve_host', 'websockets', 'timeout', 'rules', 'allow', 'deny', 'groups', 'domains', 'emails', 'users',
  'paths', 'methods', 'source_ips', 'claims', 'device', 'trust', 'ids', 'not', 'all_of', 'any_of', 'authenticated', 'session_max_age', 'unknown_key',
  '<<', '? complex', '"quoted key"', "'single'", '0', 'null', '~', ''
)
const scalar = fc.oneof(
  fc.constantFrom('', '~', 'null', 'true', 'false', 'yes', '0', '-1', '8080', '65536', '1e309', '0x1F', '.inf', '.nan', '12h', '5m', '0s', '-3s',
    'http://wiki.localhost:8080', 'https://idp.example.com', 'http://127.0.0.1:9001', '/admin/**', '/%2e%2e', '//x', '10.0.0.0/8', '::1/129',
    'example.com', 'a@b.c', 'GET', 'known', '${SECRET}', '${MISSING}', '${}', '$${SECRET}', '${SECRET', '"unterminated', "'it''s'", '[a, b', '{a: 1',
    '&anchor x', '*anchor', '*undefined', '!!binary aGk=', '!!int x', '!custom x', '|', '>-', '- item', '# comment', 'a: b: c', '\t', 'é', '\u2028'),
  fc.string({ maxLength: 12 })
)
const line = fc.tuple(fc.nat({ max: 8 }), fc.constantFrom('', '- '), key, fc.constantFrom(':', ': ', ':  ', ' :', ''), scalar)
  .map(([indent, dash, k, colon, v]) => ' '.repeat(indent) + dash + k + colon + v)
const yamlish = fc.array(line, { maxLength: 30 }).map((lines) => lines.join('\n'))

t.test('YAML-ish documents from the config\'s vocabulary', async (t) => {
  fc.assert(fc.property(yamlish, fc.constantFrom({}, { SECRET: 'x' }, { SECRET: '${SECRET}' }, { SECRET: 'a\nb: c' }), (text, env) => check(text, env)), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})

const mutation = fc.oneof(
  fc.tuple(fc.constant('insert' as const), fc.nat(), fc.constantFrom(':', '-', ' ', '\n', '\t', '"', "'", '[', ']', '{', '}', '&', '*', '!', '#', '|', '>', '%', '@', '`', '$', '\u0000', 'x')),
  fc.tuple(fc.constant('delete' as const), fc.nat(), fc.constant('')),
  fc.tuple(fc.constant('duplicate-line' as const), fc.nat(), fc.constant('')),
  fc.tuple(fc.constant('swap-lines' as const), fc.nat(), fc.constant('')),
  fc.tuple(fc.constant('replace-value' as const), fc.nat(), fc.string({ maxLength: 10 }))
)

function mutate (text: string, [kind, at, s]: [string, number, string]): string {
  const lines = text.split('\n')
  const i = at % Math.max(1, text.length)
  const l = at % lines.length
  switch (kind) {
    case 'insert': return text.slice(0, i) + s + text.slice(i)
    case 'delete': return text.slice(0, i) + text.slice(i + 1)
    case 'duplicate-line': return [...lines.slice(0, l + 1), lines[l] as string, ...lines.slice(l + 1)].join('\n')
    case 'swap-lines': {
      const m = (l + 1) % lines.length
      const out = [...lines]
      out[l] = lines[m] as string
      out[m] = lines[l] as string
      return out.join('\n')
    }
    default: {
      const cur = lines[l] as string
      const colon = cur.indexOf(':')
      const out = [...lines]
      out[l] = colon === -1 ? cur + s : cur.slice(0, colon + 1) + ' ' + s
      return out.join('\n')
    }
  }
}

t.test('mutations of a valid config', async (t) => {
  t.ok(loadConfigText(VALID, FILE, { SECRET: 'x' }).ok, 'control: the base config loads')
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
    const text = ms.reduce((acc, m) => mutate(acc, m), VALID)
    return check(text, { SECRET: 'x' })
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})
