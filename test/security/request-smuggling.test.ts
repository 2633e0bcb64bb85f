/**
 * Attack family: HTTP request smuggling — the proxy and the upstream disagree on where one
 * request ends, so bytes the proxy took for a body reach the upstream as a second request that
 * was never decided on (or that rides on another user's connection).
 *
 * Seen in: James Kettle, "HTTP Desync Attacks" (PortSwigger, 2019: CL.TE, TE.CL, TE.TE
 * obfuscation), Node.js CVE-2022-32213 / CVE-2022-32215 (llhttp accepting malformed
 * Transfer-Encoding and obs-fold), CVE-2023-30589 (CR alone as a line end), HAProxy
 * CVE-2021-40346 (Content-Length integer overflow), Apache Traffic Server and Squid chunk-extension
 * desyncs, and "body on GET" smuggling through proxies that forward a Content-Length without the
 * body.
 *
 * Moatless parses with Node's strict llhttp (no `insecureHTTPParser`), so most of these are 400
 * before any stage runs; the upstream request is re-framed by undici from what was parsed, never
 * copied as bytes (src/proxy/forward.ts), and src/proxy/headers.ts drops Transfer-Encoding and
 * the other hop-by-hop headers. Each case asserts: 400 and nothing forwarded, or exactly one
 * well-formed request forwarded; and after it, the next request on the pooled upstream
 * connection arrives intact (no desync left behind).
 */
import t, { type Test } from 'tap'
import { rawRequest } from '../helpers/raw.js'
import { mark, noCrash, rawExchange, wikiWithAlice } from './helpers.js'

const { stack, alice, host } = await wikiWithAlice()
t.teardown(() => stack.close())
const base = `Host: ${host}\r\nCookie: ${alice.cookieHeader(stack.origin('wiki'))}\r\n`
const SMUGGLED = `GET /admin/secret HTTP/1.1\r\nHost: ${host}\r\n\r\n`

let checks = 0
/** A clean request after an attack: the upstream must see exactly it, as alice. */
async function stillInSync (t: Test): Promise<void> {
  const path = `/after-${++checks}`
  const m = mark(stack)
  const res = await alice.request(`${stack.origin('wiki')}${path}`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 200, 'the next request is answered')
  t.same(m.since().map((s) => [s.method, s.url, s.headers['x-moatless-user']]), [['GET', path, 'user-1001']], 'and reaches the upstream intact')
}

// [name, bytes]: Node refuses each with 400; nothing may be forwarded.
const REFUSED: [string, string][] = [
  ['CL.TE: Content-Length and Transfer-Encoding together', `POST /x HTTP/1.1\r\n${base}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`],
  ['TE.CL: chunked body longer than Content-Length', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ['TE.TE: chunked then an unknown coding', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n`],
  ['Transfer-Encoding: xchunked', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: chunked, identity', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['space before the colon of Transfer-Encoding', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`],
  ['space before the colon of Content-Length', `POST /x HTTP/1.1\r\n${base}Content-Length : 5\r\n\r\nhello`],
  ['obs-fold hiding Transfer-Encoding', `POST /x HTTP/1.1\r\n${base}X-Foo: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`],
  ['two different Content-Length', `POST /x HTTP/1.1\r\n${base}Content-Length: 4\r\nContent-Length: 5\r\n\r\nhello`],
  ['two equal Content-Length', `POST /x HTTP/1.1\r\n${base}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`],
  ['Content-Length list', `POST /x HTTP/1.1\r\n${base}Content-Length: 5, 5\r\n\r\nhello`],
  ['Content-Length +5', `POST /x HTTP/1.1\r\n${base}Content-Length: +5\r\n\r\nhello`],
  ['Content-Length 0x5', `POST /x HTTP/1.1\r\n${base}Content-Length: 0x5\r\n\r\nhello`],
  ['Content-Length -1', `POST /x HTTP/1.1\r\n${base}Content-Length: -1\r\n\r\nhello`],
  ['chunk size not hex', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`],
  ['chunk size overflowing 64 bits', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n`],
  ['chunk without its CRLF', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n`],
  ['chunks delimited by bare LF', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n`],
  ['bare CR as line end', `GET /x HTTP/1.1\r${base}\r\n`],
  ['bare LF request', `GET /x HTTP/1.1\nHost: ${host}\n\n`],
  ['CR inside a header value', `GET /x HTTP/1.1\r\n${base}X-A: a\rTransfer-Encoding: chunked\r\n\r\n`],
  ['NUL inside a header value', `GET /x HTTP/1.1\r\n${base}X-A: a\u0000b\r\n\r\n`],
  ['header line without a colon', `GET /x HTTP/1.1\r\n${base}Transfer-Encoding chunked\r\n\r\n`],
  ['junk after the HTTP version', `GET /x HTTP/1.1 x\r\n${base}\r\n`],
  ['HTTP/1.2', `GET /x HTTP/1.2\r\n${base}\r\n`],
  ['HTTP/0.9 request line', 'GET /x\r\n\r\n'],
  ['lowercase method', `get /x HTTP/1.1\r\n${base}\r\n`]
]

t.test('malformed framing: 400, nothing forwarded, nothing left behind', async (t) => {
  for (const [name, bytes] of REFUSED) {
    const m = mark(stack)
    const res = await rawRequest(stack.port, bytes, 1500)
    t.equal(res.status, 400, `${name} → 400`)
    noCrash(t, res, name)
    t.same(m.since(), [], `${name}: nothing forwarded`)
  }
  await stillInSync(t)
})

t.test('a body on GET is not forwarded, and does not become a request', async (t) => {
  for (const framing of ['length', 'chunked'] as const) {
    const m = mark(stack)
    const body = framing === 'length'
      ? `Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`
      : `Transfer-Encoding: chunked\r\n\r\n${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`
    const res = await rawRequest(stack.port, `GET /page HTTP/1.1\r\n${base}Connection: close\r\n${body}`)
    t.equal(res.status, 200, `${framing}: the GET itself is answered`)
    const seen = m.since()
    t.same(seen.map((s) => [s.method, s.url, s.body]), [['GET', '/page', '']], `${framing}: exactly one GET, without the body`)
    t.equal(seen[0]?.headers['content-length'], undefined, `${framing}: no Content-Length promising a body that never comes`)
    t.equal(seen[0]?.headers['transfer-encoding'], undefined)
    await stillInSync(t)
  }
})

t.test('bodies on other methods are re-framed, never copied', async (t) => {
  const cases: [string, string, string][] = [
    ['TE.TE with chunked last', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`, ''],
    ['chunk extension', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=${'a'.repeat(20)}\r\nhello\r\n0\r\n\r\n`, 'hello'],
    ['trailer naming an identity header', `POST /x HTTP/1.1\r\n${base}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Moatless-User: root\r\n\r\n`, 'hello'],
    ['DELETE with a body holding a request', `DELETE /x HTTP/1.1\r\n${base}Content-Length: ${SMUGGLED.length}\r\nConnection: close\r\n\r\n${SMUGGLED}`, SMUGGLED]
  ]
  for (const [name, bytes, body] of cases) {
    const m = mark(stack)
    const res = await rawRequest(stack.port, bytes)
    t.equal(res.status, 200, `${name}: answered`)
    const seen = m.since()
    t.equal(seen.length, 1, `${name}: exactly one request forwarded`)
    t.equal(seen[0]?.url, '/x')
    t.equal(seen[0]?.body, body, `${name}: with the body as parsed`)
    t.equal(seen[0]?.headers['x-moatless-user'], 'user-1001', `${name}: identity is ours`)
    t.equal(seen[0]?.headers['transfer-encoding'] === undefined || seen[0]?.headers['transfer-encoding'] === 'chunked', true)
    await stillInSync(t)
  }
})

t.test('pipelined requests are decided one by one', async (t) => {
  const m = mark(stack)
  const raw = await rawExchange(stack.port, `GET /page HTTP/1.1\r\n${base}Accept: application/json\r\n\r\nGET /admin/secret HTTP/1.1\r\n${base}Accept: application/json\r\nConnection: close\r\n\r\n`)
  const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((x) => Number(x[1]))
  t.same(statuses, [200, 403], 'the second request is denied on its own')
  t.same(m.since().map((s) => s.url), ['/page'], 'only the first reached the upstream')
})

t.test('no upstream request was ever for /admin', async (t) => {
  t.notOk(stack.upstream.requests.some((s) => s.url.startsWith('/admin')))
})
