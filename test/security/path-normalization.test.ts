/**
 * Attack family: path normalization and encoding — the proxy decides on one reading of the
 * request target and the upstream acts on another.
 *
 * Seen in: Envoy CVE-2019-9901 (`/info/../private` passed RBAC on the raw path; Pomerium and
 * Istio inherit Envoy's `normalize_path`) and CVE-2021-29492 (`%2F` / `%5C` not decoded), nginx
 * `merge_slashes off` and `//admin`, the Tomcat/Jetty `..;/` trick (Orange Tsai, "Breaking
 * Parser Logic", Black Hat 2018), Apache Shiro CVE-2020-1957 / CVE-2020-11989 (`/admin;/`),
 * Jetty CVE-2021-28164 / CVE-2021-34429 (`%2e` and `%u002e` dot segments), IIS double decoding
 * CVE-2001-0333 (`%252e`), overlong UTF-8 `%c0%ae` (IIS CVE-2000-0884), Unicode compatibility
 * forms (fullwidth `／` U+FF0F, `．` U+FF0E) in Python/IIS normalizers, and proxies that accept
 * absolute-form or asterisk-form targets and route by them.
 *
 * Moatless answers every ambiguous form with 400 before any other stage (src/proxy/
 * normalize-path.ts, called from src/proxy/intake.ts), and forwards exactly the string it decided
 * on. Each vector is sent byte-exact (rawRequest) both anonymously and with a session, against
 * an app whose `/public/**` is public and whose `/admin/**` is denied to everyone.
 */
import t from 'tap'
import { rawRequest } from '../helpers/raw.js'
import { decisionOf, mark, noCrash, wikiWithAlice } from './helpers.js'

const { stack, host, cookie: aliceCookie } = await wikiWithAlice({ publicPaths: ['/public/**'] })
t.teardown(() => stack.close())

function get (target: string, cookie?: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return rawRequest(stack.port, `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${cookie === undefined ? '' : `Cookie: ${cookie}\r\n`}Accept: application/json\r\nConnection: close\r\n\r\n`)
}

/**
 * Would a lenient upstream (Tomcat + IIS rolled into one) read this path as under /admin? It
 * decodes once, takes `\` for `/`, strips `;parameters` and resolves dot segments.
 */
function upstreamSeesAdmin (url: string): boolean {
  let p = url.split('?')[0] as string
  try { p = decodeURIComponent(p) } catch { /* kept as is */ }
  const out: string[] = []
  for (const raw of p.replace(/\\/g, '/').split('/')) {
    const seg = raw.split(';')[0] as string
    if (seg === '..') out.pop()
    else if (seg !== '.' && seg !== '') out.push(seg)
  }
  return out[0] === 'admin'
}

// Each of these reaches /admin on some upstream, or is read differently by some upstream.
const AMBIGUOUS: [string, string][] = [
  ['/public/../admin/x', 'raw dot segment'],
  ['/public/./../admin', 'raw dot segments'],
  ['/public/%2e%2e/admin', '%2e%2e'],
  ['/public/%2E%2e/admin', 'mixed-case %2E%2e'],
  ['/public/.%2e/admin', '.%2e'],
  ['/public/%2e./admin', '%2e.'],
  ['/public/..;/admin', 'Tomcat ..;'],
  ['/public/..;x=1/admin', 'Tomcat ..;x=1'],
  ['/public/..%3b/admin', 'encoded ..%3b'],
  ['/public/%252e%252e/admin', 'double encoding %252e%252e'],
  ['/public/%25252e%25252e/admin', 'triple encoding'],
  ['/public/%c0%ae%c0%ae/admin', 'overlong UTF-8 %c0%ae'],
  ['/public/%e0%80%ae%e0%80%ae/admin', 'three-byte overlong UTF-8'],
  ['/public/%ef%bc%8e%ef%bc%8e/admin', 'fullwidth full stops'],
  ['/public/%e2%80%a5/admin', 'two dot leader U+2025'],
  ['/public%ef%bc%8f..%ef%bc%8fadmin', 'fullwidth solidus'],
  ['/public/..%ef%bc%bcadmin', 'fullwidth reverse solidus'],
  ['/public/..%2fadmin', 'encoded slash %2f'],
  ['/public/..%2Fadmin', 'encoded slash %2F'],
  ['/public%2f..%2fadmin', 'encoded slashes only'],
  ['/public/..%5cadmin', 'encoded backslash %5c'],
  ['/public/..%255cadmin', 'double-encoded backslash'],
  ['/public/..\\admin', 'raw backslash'],
  ['/public\\..\\admin', 'raw backslashes'],
  ['/public/..%00/admin', 'NUL after dots'],
  ['/public/%00/../admin', 'encoded NUL'],
  ['/admin;x=1', 'matrix parameter on a denied segment'],
  ['/admin;/users', 'Shiro /admin;/'],
  ['/admin;jsessionid=0/users', 'jsessionid path parameter'],
  ['/admin%3bx/users', 'encoded ; (decoded before the parameters are stripped)'],
  ['/admin/%3bx', 'Shiro CVE-2020-13933 /admin/%3b'],
  ['/public;/../admin', 'parameter then dots'],
  ['//admin', 'empty first segment (nginx merge_slashes)'],
  ['///admin/users', 'many slashes'],
  ['/public//../admin', 'empty segment before dots'],
  ['//evil.example/admin', '//host path'],
  ['/admin#', 'empty fragment'],
  ['/public#/../admin', 'fragment hiding a walk'],
  ['/public/x?y#/../../admin', 'fragment in the query'],
  ['/admin%zz', 'malformed escape'],
  ['/public/%u002e%u002e/admin', 'IIS %u escapes'],
  ['http://wiki.localhost/admin', 'absolute-form'],
  [`http://${host}/admin`, 'absolute-form naming this host'],
  ['http://other.example/', 'absolute-form naming another host'],
  ['https://wiki.localhost/admin', 'absolute-form https'],
  ['*', 'asterisk-form'],
  ['admin', 'relative target'],
  ['/public/\u00e9', 'raw non-ASCII byte']
]

for (const who of ['anonymous', 'alice'] as const) {
  t.test(`ambiguous targets get 400 and reach nothing (${who})`, async (t) => {
    const m = mark(stack)
    for (const [target, name] of AMBIGUOUS) {
      const res = await get(target, who === 'alice' ? aliceCookie : undefined)
      t.equal(res.status, 400, `${name}: ${JSON.stringify(target)} → 400`)
      noCrash(t, res, name)
    }
    t.same(m.since().map((s) => s.url), [], 'the upstream received nothing')
  })
}

t.test('regression: an undecodable URL got fastify\'s default 400, echoing it, with no decision line', async (t) => {
  const m = mark(stack)
  for (const target of ['/%c0%ae%c0%ae/admin?code=secret', '/%ff', '/x/%ed%a0%80']) {
    const res = await get(target, aliceCookie)
    t.equal(res.status, 400, target)
    const body = JSON.parse(res.body) as Record<string, unknown>
    t.match(body, { error: 'bad_request', reason: 'malformed-escape', request_id: String }, `${target}: answered like intake's 400s`)
    t.notMatch(res.body, /%c0|%ff|%ed|FST_ERR/i, `${target}: the URL is not echoed`)
    const line = stack.logs.find((l) => l.msg === 'decision' && l.request_id === body.request_id)
    t.match(line, { decision: 'deny', rule: 'bad-request', status: 400, app: null }, `${target}: one decision line`)
    t.same(Object.keys(line ?? {}).filter((k) => !['level', 'pid', 'hostname', 'msg'].includes(k)).sort(),
      ['app', 'decision', 'device_id', 'device_trust', 'duration', 'method', 'path', 'reason', 'request_id', 'rule', 'status', 'time', 'user'], 'with the SPEC keys')
    t.notMatch(JSON.stringify(line), /secret/, 'and no query string')
  }
  t.same(m.since(), [])
})

t.test('OPTIONS * and CONNECT: refused, nothing forwarded', async (t) => {
  const m = mark(stack)
  const star = await get('*', aliceCookie, 'OPTIONS')
  t.equal(star.status, 400)
  noCrash(t, star, 'OPTIONS *')
  const connect = await rawRequest(stack.port, `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\nCookie: ${aliceCookie}\r\n\r\n`)
  t.ok(connect.status === 0 || connect.status === 400, `CONNECT is dropped or refused (got ${connect.status})`)
  t.same(m.since(), [])
})

t.test('a deny on /admin/** holds for every spelling that is accepted', async (t) => {
  const m = mark(stack)
  for (const target of ['/admin', '/admin/', '/admin/users', '/%61dmin', '/%61%64%6d%69%6e/users', '/admin/%2e%2e%2e', '/admin?x=/public']) {
    const res = await get(target, aliceCookie)
    t.equal(res.status, 403, `${target} → 403`)
    noCrash(t, res, target)
  }
  t.same(m.since(), [], 'nothing forwarded')
})

t.test('accepted oddities are forwarded exactly as decided', async (t) => {
  // [raw target, the path decided on and forwarded]
  const table: [string, string][] = [
    ['/a"b', '/a%22b'], // the URL parser building the upstream request would encode it anyway
    ['/a<b>`{c}', '/a%3Cb%3E%60%7Bc%7D'],
    ['/a|b^c', '/a|b^c'],
    ['/%7euser/%41', '/~user/A'],
    ['/x/%ef%bd%81dmin', '/x/%EF%BD%81dmin'], // fullwidth letters are other letters, not `admin`
    ['/files/100%25', '/files/100%25'],
    ['/x.json', '/x.json'],
    ['/x/...', '/x/...']
  ]
  for (const [raw, path] of table) {
    const m = mark(stack)
    const res = await get(raw, aliceCookie)
    noCrash(t, res, raw)
    const seen = m.since()
    if (raw.endsWith('/...')) {
      // @fastify/reply-from refuses any path containing `/..` (even `/...`): 400, not forwarded.
      t.equal(res.status, 400, `${raw}: refused by the forwarder`)
      t.same(seen, [])
      continue
    }
    t.equal(res.status, 200, `${raw} → 200`)
    t.equal(seen.length, 1, `${raw}: forwarded once`)
    t.equal(seen[0]?.url, path, `${raw}: upstream saw ${path}`)
    t.equal((await decisionOf(stack, seen[0]?.headers['x-request-id']))?.path, path, `${raw}: decided on ${path}`)
  }
})

t.test('nothing the upstream received reads as /admin', async (t) => {
  for (const s of stack.upstream.requests) t.notOk(upstreamSeesAdmin(s.url), `upstream request ${JSON.stringify(s.url)}`)
})
