/**
 * Attack family: header trust — the client sends headers that the proxy, or the upstream
 * behind it, believes: identity, client address, scheme, host, the "real" URL or method, or a
 * hop-by-hop list that strips what the proxy added.
 *
 * Seen in: identity-header spoofing past auth proxies (oauth2-proxy GHSA-vjrc-mh2v-45x6 /
 * CVE-2025-64484: underscore variants of `X-Forwarded-*` that WSGI and PHP apps read as dashes;
 * oauth2-proxy GHSA-7x63-xv5r-3p2x: a spoofed `X-Forwarded-Uri` chose the path that skipped
 * auth), `Connection: X-Forwarded-For` hop-by-hop abuse (Nathan
 * Davison, "Abusing HTTP hop-by-hop request headers", 2019; @fastify/reply-from's fix for the
 * same), `X-Original-URL` / `X-Rewrite-URL` in IIS URL Rewrite and Symfony (CVE-2018-14773),
 * `X-Forwarded-Prefix` in Spring, `X-HTTP-Method-Override` in Express/Rails/Laravel,
 * `X-Forwarded-For` spoofing (the right-most untrusted address rule of MDN / RFC 7239), duplicate
 * Host headers (PortSwigger "HTTP Host header attacks"), h2c upgrade smuggling past proxies
 * (Bishop Fox, "h2c Smuggling", 2020).
 *
 * Moatless: src/proxy/headers.ts builds the upstream headers (drops every `X-Moatless-*` in any
 * spelling, the forwarding, client-address, routing-override, method-override and hop-by-hop
 * headers); src/proxy/intake.ts refuses two Host headers and decides the client address;
 * @fastify/reply-from removes what `Connection` names before Moatless adds its own.
 */
import t from 'tap'
import { Browser } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw.js'
import { startStack, browserSignIn, type Stack } from '../helpers/stack.js'
import { decisionOf, finalStatus, mark, noCrash } from './helpers.js'

const stack = await startStack({
  apps: {
    wiki: {
      identity_headers: true,
      public_paths: ['/public/**'],
      websockets: false,
      rules: [
        { name: 'nobody-in-admin', deny: { paths: ['/admin/**'] } },
        { name: 'staff', allow: { domains: ['example.com'] } }
      ]
    },
    reader: { identity_headers: true, rules: [{ name: 'read-only', allow: { authenticated: true, methods: ['GET', 'HEAD'] } }] }
  }
})
t.teardown(() => stack.close())
const alice = new Browser()
await browserSignIn(alice, stack, `${stack.origin('wiki')}/`, 'alice')
await alice.follow(`${stack.origin('reader')}/`, { headers: { accept: 'text/html' } })
const wiki = `wiki.localhost:${stack.port}`
const reader = `reader.localhost:${stack.port}`
const aliceWiki = alice.cookieHeader(stack.origin('wiki'))
const aliceReader = alice.cookieHeader(stack.origin('reader'))

function send (s: Stack, request: string): ReturnType<typeof rawRequest> {
  return rawRequest(s.port, request)
}
const req = (method: string, target: string, host: string, headers: string[], body = ''): string =>
  `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${headers.map((h) => h + '\r\n').join('')}Connection: close\r\n\r\n${body}`

/** Header names the upstream received, as sent (raw spelling). */
const rawNames = (raw: string[]): string[] => raw.filter((_, i) => i % 2 === 0)

const SPOOFED = [
  'X-Moatless-User: root', 'x-moatless-user: root2', 'X_Moatless_User: root3', 'x_moatless_email: root@example.com',
  'X-MOATLESS-EMAIL: root@example.com', 'X-Moatless-Groups: admins', 'x-Moatless-groups: admins',
  'X-Moatless-Jwt-Assertion: eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.', 'X_MOATLESS_JWT_ASSERTION: forged',
  'X-Moatless-Device: forged', 'X-Moatless-Anything: x', 'X-Client-Cert: -----BEGIN%20CERTIFICATE-----', 'X_Client_Cert: x',
  'X-Forwarded-User: root', 'X-Forwarded-Email: root@example.com', 'X-Auth-Request-User: root'
]

t.test('spoofed identity headers never reach the upstream (signed in)', async (t) => {
  const m = mark(stack)
  const res = await send(stack, req('GET', '/page', wiki, [`Cookie: ${aliceWiki}`, ...SPOOFED]))
  t.equal(res.status, 200)
  const [seen] = m.since()
  const h = seen?.headers ?? {}
  t.equal(h['x-moatless-user'], 'user-1001', 'the IdP subject, not the client\'s')
  t.equal(h['x-moatless-email'], 'alice@example.com')
  t.equal(h['x-moatless-groups'], 'engineering')
  t.match(String(h['x-moatless-jwt-assertion']), /^eyJhbGciOiJFUzI1NiI/, 'our ES256 assertion')
  for (const name of rawNames(seen?.rawHeaders ?? [])) {
    t.notMatch(name, /_/, `no underscore spelling reaches the upstream (${name})`)
    t.notMatch(name.toLowerCase(), /^x-moatless-(device|anything)$|^x-client-cert$|^x-forwarded-(user|email)$/, `${name} dropped`)
  }
  t.equal(rawNames(seen?.rawHeaders ?? []).filter((n) => n.toLowerCase() === 'x-moatless-user').length, 1, 'exactly one X-Moatless-User')
})

t.test('spoofed identity headers never reach the upstream (anonymous, public path)', async (t) => {
  const m = mark(stack)
  const res = await send(stack, req('GET', '/public/page', wiki, SPOOFED))
  t.equal(res.status, 200)
  const [seen] = m.since()
  const names = rawNames(seen?.rawHeaders ?? []).map((n) => n.toLowerCase())
  t.same(names.filter((n) => /^x[-_]moatless|^x[-_]client[-_]cert/.test(n)), [], 'no identity header at all, no assertion')
})

t.test('Connection cannot remove the headers Moatless adds', async (t) => {
  const m = mark(stack)
  const res = await send(stack, req('GET', '/page', wiki, [
    `Cookie: ${aliceWiki}`,
    'Connection: X-Moatless-Jwt-Assertion, X-Moatless-User, X-Moatless-Email, X-Moatless-Groups, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, X-Request-Id'
  ]))
  t.equal(res.status, 200)
  const h = m.since()[0]?.headers ?? {}
  for (const name of ['x-moatless-jwt-assertion', 'x-moatless-user', 'x-moatless-email', 'x-moatless-groups', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id']) {
    t.ok(typeof h[name] === 'string' && h[name] !== '', `${name} still sent`)
  }
})

t.test('routing-override headers change neither the decision nor the path', async (t) => {
  const overrides = ['X-Original-URL: /admin', 'X-Rewrite-URL: /admin', 'X-Original-URI: /admin', 'X-Forwarded-Uri: /admin',
    'X-Forwarded-Prefix: /admin', 'X-Forwarded-Path: /admin', 'X-Envoy-Original-Path: /admin', 'X-Original-Host: evil.example', 'X-Host: evil.example']
  const m = mark(stack)
  const ok = await send(stack, req('GET', '/page', wiki, [`Cookie: ${aliceWiki}`, ...overrides]))
  t.equal(ok.status, 200)
  const seen = m.since()
  t.equal(seen.length, 1)
  t.equal(seen[0]?.url, '/page', 'forwarded to the path of the request line')
  t.equal((await decisionOf(stack, seen[0]?.headers['x-request-id']))?.path, '/page', 'decided on it too')
  const names = rawNames(seen[0]?.rawHeaders ?? []).map((n) => n.toLowerCase())
  for (const o of overrides) {
    const name = (o.split(':')[0] as string).toLowerCase()
    if (name === 'x-forwarded-uri' || name === 'x-forwarded-prefix' || name === 'x-forwarded-path') t.notOk(names.includes(name), `${name} dropped`)
    else t.notOk(names.includes(name), `${name} dropped (IIS, Symfony and Zend route by it)`)
  }
  const denied = await send(stack, req('GET', '/admin', wiki, [`Cookie: ${aliceWiki}`, 'Accept: application/json', 'X-Original-URL: /page', 'X-Rewrite-URL: /page']))
  t.equal(denied.status, 403, '/admin with X-Original-URL: /page is still /admin')
  t.equal(m.since().length, 1, 'nothing more forwarded')
})

t.test('method-override headers: decided on the request line; the override is not forwarded', async (t) => {
  const m = mark(stack)
  const post = await send(stack, req('POST', '/items', reader, [`Cookie: ${aliceReader}`, 'Accept: application/json', 'X-HTTP-Method-Override: GET', 'Content-Length: 0']))
  t.equal(post.status, 403, 'a POST claiming to be a GET is a POST')
  t.same(m.since(), [])
  for (const header of ['X-HTTP-Method-Override: DELETE', 'X-HTTP-Method: DELETE', 'X-Method-Override: DELETE', 'x_http_method_override: DELETE']) {
    const get = await send(stack, req('GET', '/items', reader, [`Cookie: ${aliceReader}`, header]))
    t.equal(get.status, 200, `GET with ${header} is a GET`)
    const seen = m.since().at(-1)
    t.equal(seen?.method, 'GET')
    t.notOk(rawNames(seen?.rawHeaders ?? []).some((n) => /method/i.test(n)), `${header}: not forwarded (an app honouring it would run DELETE)`)
  }
})

t.test('X-Forwarded-For/-Host/-Proto and Forwarded from an untrusted peer are replaced', async (t) => {
  const m = mark(stack)
  const res = await send(stack, req('GET', '/page', wiki, [
    `Cookie: ${aliceWiki}`, 'X-Forwarded-For: 10.0.0.1, 10.0.0.2', 'X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: https',
    'X-Forwarded-Port: 443', 'Forwarded: for=10.0.0.1;host=evil.example;proto=https', 'X-Real-IP: 10.0.0.1', 'True-Client-IP: 10.0.0.1',
    'CF-Connecting-IP: 10.0.0.1', 'X-Client-IP: 10.0.0.1', 'X-Cluster-Client-IP: 10.0.0.1', 'Fastly-Client-IP: 10.0.0.1'
  ]))
  t.equal(res.status, 200)
  const seen = m.since()[0]
  const h = seen?.headers ?? {}
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'the peer address, not the client\'s claim')
  t.equal(h['x-forwarded-host'], wiki)
  t.equal(h['x-forwarded-proto'], 'http')
  const names = rawNames(seen?.rawHeaders ?? []).map((n) => n.toLowerCase())
  for (const n of ['x-forwarded-port', 'forwarded', 'x-real-ip', 'true-client-ip', 'cf-connecting-ip', 'x-client-ip', 'x-cluster-client-ip', 'fastly-client-ip']) {
    t.notOk(names.includes(n), `${n} dropped`)
  }
})

t.test('two Host headers, or a Host that names no app: refused, nothing forwarded', async (t) => {
  const m = mark(stack)
  const cases: [string, number][] = [
    [`GET /page HTTP/1.1\r\nHost: ${wiki}\r\nHost: ${reader}\r\nCookie: ${aliceWiki}\r\nConnection: close\r\n\r\n`, 400],
    [`GET /page HTTP/1.1\r\nHost: ${wiki}\r\nhost: ${wiki}\r\nCookie: ${aliceWiki}\r\nConnection: close\r\n\r\n`, 400],
    [`GET /page HTTP/1.1\r\nCookie: ${aliceWiki}\r\nConnection: close\r\n\r\n`, 400],
    [`GET /page HTTP/1.1\r\nHost: evil@${wiki}\r\nCookie: ${aliceWiki}\r\nConnection: close\r\n\r\n`, 404],
    [`GET /page HTTP/1.1\r\nHost: ${wiki}/admin\r\nCookie: ${aliceWiki}\r\nConnection: close\r\n\r\n`, 404],
    [`GET /page HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: ${wiki}\r\nCookie: ${aliceWiki}\r\nConnection: close\r\n\r\n`, 404],
    [`GET http://${wiki}/page HTTP/1.1\r\nHost: evil.example\r\nCookie: ${aliceWiki}\r\nConnection: close\r\n\r\n`, 400]
  ]
  for (const [request, status] of cases) {
    const res = await send(stack, request)
    t.equal(res.status, status, JSON.stringify(request.split('\r\n').slice(0, 3)))
    noCrash(t, res, 'host')
  }
  t.same(m.since(), [])
})

t.test('two Authorization headers: refused, nothing forwarded', async (t) => {
  const m = mark(stack)
  const res = await send(stack, req('GET', '/page', wiki, ['Accept: application/json', 'Authorization: Bearer aaa.bbb.ccc', 'Authorization: Bearer ddd.eee.fff']))
  t.equal(res.status, 401)
  t.match(res.body, /invalid_token/)
  t.same(m.since(), [])
})

t.test('h2c upgrade: never switched, never forwarded with its upgrade headers', async (t) => {
  const m = mark(stack)
  const anon = await send(stack, req('GET', '/page', wiki, ['Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', 'Connection: Upgrade, HTTP2-Settings']).replace('Connection: close\r\n', ''))
  t.equal(anon.status, 400, 'a non-websocket upgrade is refused before anything else')
  const signed = await send(stack, req('GET', '/page', wiki, [`Cookie: ${aliceWiki}`, 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', 'Connection: Upgrade, HTTP2-Settings']).replace('Connection: close\r\n', ''))
  t.equal(signed.status, 400, 'refused with a session too: no protocol switch, nothing forwarded')
  noCrash(t, signed, 'h2c upgrade')
  const plain = await send(stack, req('GET', '/page', wiki, [`Cookie: ${aliceWiki}`, 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']))
  t.equal(plain.status, 200, 'Upgrade without Connection: upgrade is a plain request (it was a 502)')
  for (const s of m.since()) {
    const names = rawNames(s.rawHeaders).map((n) => n.toLowerCase())
    t.notOk(names.includes('upgrade'), 'no Upgrade header upstream')
    t.notOk(names.includes('http2-settings'), 'no HTTP2-Settings upstream')
  }
})

t.test('regression: hop-by-hop request headers gave 502 (Expect: 100-continue, Keep-Alive, Upgrade)', async (t) => {
  // undici refuses to send these; curl sends `Expect: 100-continue` with every body over 1 KiB.
  const body = 'x'.repeat(2048)
  const cases: [string, string[], string][] = [
    ['POST', ['Expect: 100-continue', `Content-Length: ${body.length}`, 'Content-Type: text/plain'], body],
    ['GET', ['Keep-Alive: timeout=5, max=100'], ''],
    ['GET', ['Proxy-Connection: keep-alive', 'TE: trailers', 'Trailer: X-Foo'], ''],
    ['GET', ['Upgrade: TLS/1.2'], ''],
    ['GET', ['Proxy-Authorization: Basic dXNlcjpwYXNz'], '']
  ]
  for (const [method, headers, b] of cases) {
    const m = mark(stack)
    const res = await send(stack, req(method, '/page', reader, [`Cookie: ${aliceReader}`, ...headers], b))
    const status = finalStatus(res.raw)
    if (method === 'POST') {
      t.equal(status, 403, 'the POST is decided (403 on a read-only app), not a 502')
      continue
    }
    t.equal(status, 200, `${headers.join(', ')}: forwarded`)
    const names = rawNames(m.since()[0]?.rawHeaders ?? []).map((n) => n.toLowerCase())
    for (const h of ['keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'expect']) t.notOk(names.includes(h), `${h} not forwarded`)
  }
  const m = mark(stack)
  const res = await send(stack, req('POST', '/upload', wiki, [`Cookie: ${aliceWiki}`, 'Expect: 100-continue', `Content-Length: ${body.length}`, 'Content-Type: text/plain'], body))
  t.equal(finalStatus(res.raw), 200, 'a POST with Expect: 100-continue is forwarded')
  t.equal(m.since()[0]?.body, body, 'with its body')
  t.equal(m.since()[0]?.headers.expect, undefined, 'and without Expect')
})

t.test('behind trusted proxies: the client is the right-most untrusted address', async (t) => {
  const lb = await startStack({
    config: { trusted_proxies: ['127.0.0.1/32', '10.0.0.0/8'] },
    apps: { office: { rules: [{ name: 'office-network', allow: { authenticated: true, source_ips: ['192.0.2.0/24'] } }] } }
  })
  t.teardown(() => lb.close())
  const b = new Browser()
  const { final } = await browserSignIn(b, lb, `${lb.origin('office')}/`, 'alice')
  t.equal(final.status, 403, 'from 127.0.0.1 (a trusted proxy with no X-Forwarded-For) the office rule does not hold')
  const cookie = b.cookieHeader(lb.origin('office'))
  const office = `office.localhost:${lb.port}`
  // [X-Forwarded-For as the last trusted proxy sends it, status, X-Forwarded-For upstream]
  const cases: [string, number, string | null][] = [
    ['192.0.2.7', 200, '192.0.2.7, 127.0.0.1'],
    ['192.0.2.7, 10.1.1.1', 200, '192.0.2.7, 10.1.1.1, 127.0.0.1'], // through a second, trusted hop
    ['192.0.2.7, 203.0.113.9', 403, null], // the client wrote 192.0.2.7 itself: 203.0.113.9 is the client
    ['192.0.2.7, 203.0.113.9, 10.1.1.1', 403, null],
    ['203.0.113.9, 192.0.2.7', 200, '203.0.113.9, 192.0.2.7, 127.0.0.1'], // left of the client: whatever it claimed
    ['192.0.2.7, garbage', 403, null],
    ['::ffff:192.0.2.7', 200, '::ffff:192.0.2.7, 127.0.0.1']
  ]
  for (const [xff, status, forwarded] of cases) {
    const m = mark(lb)
    const res = await send(lb, req('GET', '/x', office, [`Cookie: ${cookie}`, 'Accept: application/json', `X-Forwarded-For: ${xff}`, 'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example']))
    t.equal(res.status, status, `X-Forwarded-For: ${xff} → ${status}`)
    const seen = m.since()[0]
    if (forwarded === null) {
      t.equal(seen, undefined, 'nothing forwarded')
      continue
    }
    t.equal(seen?.headers['x-forwarded-for'], forwarded, 'the chain, with the peer appended')
    t.equal(seen?.headers['x-forwarded-proto'], 'https', 'a trusted proxy\'s X-Forwarded-Proto is believed')
    t.equal(seen?.headers['x-forwarded-host'], office, 'X-Forwarded-Host never: the Host we routed by')
  }
})
