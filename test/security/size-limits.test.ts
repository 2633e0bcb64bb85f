/**
 * Attack family: oversized requests — headers, cookies, URLs and header counts past what the
 * proxy or the upstream can hold, to exhaust memory, to make the two parsers stop at different
 * places, or to push a header out of the part one of them reads.
 *
 * Seen in: Node.js CVE-2018-12121 (headers sent slowly and large, before `maxHeaderSize` and
 * `headersTimeout`), CVE-2019-9512..9518 ("HTTP/2 DoS", Netflix), cookie bombs that lock users
 * out behind a 431/400 (Egor Homakov, 2014), nginx `large_client_header_buffers` and HAProxy
 * `tune.bufsize` desyncs, and Node's `maxHeadersCount` silently dropping headers past 2000.
 *
 * Moatless keeps Node's limits (16 KiB of request head, request line included → 431; at most
 * 2000 header lines parsed, the rest dropped on both sides since the upstream request is built
 * from what was parsed), bounds its own inputs (`rd` 4 KiB, handoff code 200 B, sealed cookie
 * 8 KiB, logout token 8 KiB) and never buffers a body it is not forwarding.
 */
import t from 'tap'
import { Browser } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw.js'
import { HTML } from '../helpers/stack.js'
import { JSONH, mark, noCrash, wikiWithAlice } from './helpers.js'

const { stack, host, cookie } = await wikiWithAlice()
t.teardown(() => stack.close())

t.test('oversized heads: 431, nothing forwarded', async (t) => {
  const m = mark(stack)
  const cases: [string, string][] = [
    ['one 20 KiB header', `GET / HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`],
    ['a 70 KiB cookie', `GET / HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}; bomb=${'a'.repeat(70_000)}\r\nConnection: close\r\n\r\n`],
    ['many cookies making 40 KiB', `GET / HTTP/1.1\r\nHost: ${host}\r\nCookie: ${Array.from({ length: 1000 }, (_, i) => `c${i}=${'v'.repeat(32)}`).join('; ')}; ${cookie}\r\nConnection: close\r\n\r\n`],
    ['3000 headers', `GET / HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}Connection: close\r\n\r\n`],
    ['a 1 MiB URL', `GET /${'a'.repeat(1024 * 1024)} HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`],
    ['a 1 MiB query', `GET /?q=${'a'.repeat(1024 * 1024)} HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`],
    ['a 20 KiB bearer token', `GET / HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`],
    ['a 20 KiB header on the authenticate origin', `GET /.moatless/sign_in HTTP/1.1\r\nHost: auth.localhost:${stack.port}\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`]
  ]
  for (const [name, request] of cases) {
    const res = await rawRequest(stack.port, request, 5000)
    t.equal(res.status, 431, `${name} → 431`)
    noCrash(t, res, name)
  }
  t.same(m.since(), [], 'nothing forwarded')
})

t.test('regression: 2000 client headers pushed the assertion and identity past the upstream\'s header limit', async (t) => {
  // Node keeps the first 2000 header lines, on our listener and on a Node upstream alike. Ours
  // were appended after the client's, so the upstream dropped exactly them: no assertion, no
  // identity, no X-Forwarded-For (an app then sees the proxy's own address as the client).
  const m = mark(stack)
  // 2100 short lines stay under 16 KiB: Node parses 2000 and drops the rest.
  const filler = Array.from({ length: 2100 }, (_, i) => `A${i}: 1\r\n`).join('')
  const res = await rawRequest(stack.port, `GET /many HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\n${filler}X-Moatless-User: root\r\nX-Original-URL: /admin\r\nConnection: close\r\n\r\n`, 5000)
  t.equal(res.status, 200)
  noCrash(t, res, 'many headers')
  t.equal(m.since().length, 1, 'forwarded once')
  for (const s of m.since()) {
    t.equal(s.url, '/many')
    t.equal(s.headers['x-moatless-user'], 'user-1001', 'X-Moatless-User is ours, and arrived')
    t.match(String(s.headers['x-moatless-jwt-assertion']), /^eyJ/, 'the assertion arrived')
    t.equal(s.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For arrived')
    t.equal(s.headers['x-original-url'], undefined)
    t.ok(s.rawHeaders.length / 2 <= 2010, 'no more headers than Node parsed')
  }
})

t.test('long but acceptable requests are forwarded exactly', async (t) => {
  const m = mark(stack)
  const path = `/${'p'.repeat(8000)}`
  const res = await rawRequest(stack.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`, 5000)
  t.equal(res.status, 200)
  t.equal(m.since()[0]?.url, path)
  const denied = await rawRequest(stack.port, `GET /admin/${'p'.repeat(8000)} HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`, 5000)
  t.equal(denied.status, 403, 'a long path under /admin is still denied')
  t.equal(m.since().length, 1)
})

t.test('bodies to refused requests are not forwarded (and not buffered first)', async (t) => {
  const m = mark(stack)
  const body = 'x'.repeat(8 * 1024 * 1024)
  const started = Date.now()
  for (const [who, c] of [['anonymous', ''], ['alice on /admin', cookie]] as const) {
    // The answer may come before the body is sent; the server may then close the connection.
    const status = await new Browser().request(`${stack.origin('wiki')}/admin/upload`, { method: 'POST', headers: { ...JSONH, 'content-type': 'application/octet-stream', ...(c === '' ? {} : { cookie: c }) }, body })
      .then((res) => res.status, (err: Error & { code?: string }) => err.code ?? err.message)
    t.ok(status === 401 || status === 403 || status === 'UND_ERR_SOCKET' || status === 'ECONNRESET' || status === 'EPIPE', `${who}: refused (${status})`)
  }
  t.ok(Date.now() - started < 10_000, 'quickly')
  t.same(m.since(), [])
})

t.test('Moatless\'s own inputs are bounded', async (t) => {
  const m = mark(stack)
  const rd = await new Browser().request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(`${stack.origin('wiki')}/${'a'.repeat(5000)}`)}`, { headers: HTML })
  t.equal(rd.status, 400, 'rd longer than 4 KiB')
  const code = await new Browser().request(`${stack.origin('wiki')}/.moatless/handoff?code=${'a'.repeat(5000)}`, { headers: HTML })
  t.equal(code.status, 400, 'handoff code longer than 200 characters')
  const logout = await new Browser().request(`${stack.authUrl}/.moatless/backchannel_logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `logout_token=${'a'.repeat(64 * 1024)}` })
  t.ok(logout.status === 400 || logout.status === 413, `a 64 KiB logout request: ${logout.status}`)
  const sealed = await new Browser().request(`${stack.origin('wiki')}/`, { headers: { ...JSONH, cookie: `moatless_session=${'A'.repeat(12_000)}` } })
  t.equal(sealed.status, 401, 'a 12 KiB session cookie is no session')
  for (const r of [rd, code, logout, sealed]) noCrash(t, r, 'bounded input')
  t.same(m.since(), [])
})
