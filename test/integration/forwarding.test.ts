import t from 'tap'
import WebSocket from 'ws'
import { Browser } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw.js'
import { startStack, browserSignIn, HTML } from '../helpers/stack.js'

// Nothing listens on port 1, and no test can take it: a port picked free here was once taken by
// another test's server before this one used it (CI saw a 200 from the "down" app).
const deadPort = 1
const stack = await startStack({
  apps: {
    wiki: {
      identity_headers: true,
      websockets: true,
      timeout: '300ms',
      rules: [
        { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
        { name: 'staff', allow: { domains: ['example.com'] } }
      ]
    },
    kept: { preserve_host: true, rules: [{ name: 'any', allow: { authenticated: true } }] },
    nows: { rules: [{ name: 'any', allow: { authenticated: true } }] },
    down: { to: `http://127.0.0.1:${deadPort}`, rules: [{ name: 'any', allow: { authenticated: true } }] }
  }
})
t.teardown(() => stack.close())

const alice = new Browser()
await browserSignIn(alice, stack, `${stack.origin('wiki')}/`, 'alice')
const bob = new Browser()
await browserSignIn(bob, stack, `${stack.origin('wiki')}/`, 'bob')
const JSONH = { accept: 'application/json' }
const last = () => stack.upstream.requests.at(-1)
const aliceSub = (await alice.request(`${stack.origin('wiki')}/whoami`, { headers: JSONH }), stack.upstream.requests.at(-1)?.headers['x-moatless-user'])

t.test('client headers that claim identity never reach the upstream', async (t) => {
  const res = await alice.request(`${stack.origin('wiki')}/h`, {
    headers: {
      ...JSONH,
      'X-Moatless-User': 'root',
      'x-moatless-groups': 'admins',
      'X-MOATLESS-JWT-ASSERTION': 'forged',
      'x_moatless_email': 'root@example.com',
      'X-Client-Cert': 'forged',
      'X-Forwarded-For': '10.9.9.9',
      'X-Forwarded-Host': 'evil.example',
      'X-Request-Id': 'client-chosen',
      connection: 'keep-alive, x-moatless-jwt-assertion, x-request-id'
    }
  })
  t.equal(res.status, 200)
  const h = last()?.headers ?? {}
  t.match(String(h['x-moatless-user']), /^user-/, 'ours (the IdP subject), not the client\'s')
  t.equal(h['x-moatless-groups'], 'engineering')
  t.equal(h['x-moatless-email'], 'alice@example.com')
  t.notOk('x_moatless_email' in h, 'underscore spelling removed')
  t.notOk('x-client-cert' in h)
  t.not(h['x-moatless-jwt-assertion'], 'forged')
  t.match(String(h['x-moatless-jwt-assertion']), /^eyJ/, 'a Connection header cannot remove our assertion')
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'untrusted X-Forwarded-For replaced by the peer')
  t.equal(h['x-forwarded-host'], `wiki.localhost:${stack.port}`)
  t.equal(h['x-forwarded-proto'], 'http')
  t.not(h['x-request-id'], 'client-chosen')
  t.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/)
  t.equal(h.host, new URL(stack.upstream.url).host, 'upstream Host by default')
})

t.test('preserve_host sends the public Host', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('kept')}/`, 'alice')
  await browser.request(`${stack.origin('kept')}/p`, { headers: JSONH })
  t.equal(last()?.headers.host, `kept.localhost:${stack.port}`)
})

t.test('paths: decided and forwarded exactly as normalized; ambiguous forms are 400', async (t) => {
  const before = stack.upstream.requests.length
  // Sent raw: an HTTP client library would normalize some of these before sending.
  const cookie = alice.cookies(stack.origin('wiki')).map((c) => `${c.name}=${c.value}`).join('; ')
  for (const p of ['/admin/../x', '/%2e%2e/admin', '/.%2E/admin', '/a//b', '//admin', '/admin%2fusers', '/a/./b', '/a/.', '/x%00', '/a%5cb', '/a%zz', 'http://wiki.localhost/', '*']) {
    const res = await rawRequest(stack.port, `GET ${p} HTTP/1.1\r\nHost: wiki.localhost:${stack.port}\r\nCookie: ${cookie}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
    t.equal(res.status, 400, `${p} → 400`)
  }
  const raw = await rawRequest(stack.port, `GET /a\\b HTTP/1.1\r\nHost: wiki.localhost:${stack.port}\r\nConnection: close\r\n\r\n`)
  t.equal(raw.status, 400, 'raw backslash → 400')
  t.equal(stack.upstream.requests.length, before, 'nothing forwarded')
  const enc = await bob.request(`${stack.origin('wiki')}/%61dmin/users`, { headers: JSONH })
  t.equal(enc.status, 403, '/%61dmin is /admin')
  const ok = await alice.request(`${stack.origin('wiki')}/%61dmin/%7Eme?q=%2F`, { headers: JSONH })
  t.equal(ok.status, 200)
  t.equal(last()?.url, '/admin/~me?q=%2F', 'upstream saw the decided path; query verbatim')
})

t.test('two Host headers → 400, nothing forwarded', async (t) => {
  const before = stack.upstream.requests.length
  const raw = await rawRequest(stack.port, `GET / HTTP/1.1\r\nHost: wiki.localhost:${stack.port}\r\nHost: nows.localhost:${stack.port}\r\nConnection: close\r\n\r\n`)
  t.equal(raw.status, 400)
  t.notMatch(raw.body, /at .*\.js/, 'no stack trace')
  t.equal(stack.upstream.requests.length, before)
})

t.test('upstream failures: 502 when down, 504 past the app timeout', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('nows')}/`, 'alice')
  const page = await browser.follow(`${stack.origin('down')}/`, { headers: HTML })
  t.equal(page.final.status, 502, 'browsers get a 502 page once signed in through the handoff')
  t.match(page.final.body, /could not be reached/)
  const down = await browser.request(`${stack.origin('down')}/`, { headers: JSONH })
  t.equal(down.status, 502)
  t.equal(JSON.parse(down.body).error, 'upstream_unreachable')
  const slow = await alice.request(`${stack.origin('wiki')}/slow?ms=2000`, { headers: JSONH })
  t.equal(slow.status, 504)
})

t.test('request bodies are forwarded', async (t) => {
  const res = await alice.request(`${stack.origin('wiki')}/form`, { method: 'POST', headers: { ...JSONH, 'content-type': 'application/json' }, body: '{"a":1}' })
  t.equal(res.status, 200)
  t.equal(last()?.body, '{"a":1}')
})

function openWs (app: string, cookie: string | undefined): Promise<{ ws: WebSocket; status: number }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: `${app}.localhost:${stack.port}` }
    if (cookie !== undefined) headers.cookie = cookie
    const ws = new WebSocket(`ws://127.0.0.1:${stack.port}/socket`, { headers })
    ws.once('open', () => resolve({ ws, status: 101 }))
    ws.once('unexpected-response', (_req, res) => { resolve({ ws, status: res.statusCode ?? 0 }); res.resume() })
    ws.once('error', () => resolve({ ws, status: 0 }))
  })
}
const cookieFor = (b: Browser, app: string): string => b.cookies(stack.origin(app)).map((c) => `${c.name}=${c.value}`).join('; ')

t.test('websockets: authorized at the upgrade like any request', async (t) => {
  const before = stack.upstream.requests.length
  const anon = await openWs('wiki', undefined)
  t.equal(anon.status, 401, 'no session → 401 at the upgrade')
  t.equal(stack.upstream.requests.length, before, 'nothing reached the upstream')
  const { ws, status } = await openWs('wiki', cookieFor(alice, 'wiki'))
  t.equal(status, 101)
  const echoed = await new Promise<string>((resolve) => { ws.once('message', (d) => resolve(d.toString())); ws.send('hello') })
  t.equal(echoed, 'hello')
  const up = stack.upstream.requests.at(-1)
  t.equal(up?.headers['x-moatless-user'], aliceSub)
  t.match(String(up?.headers['x-moatless-jwt-assertion']), /^eyJ/)
  t.notMatch(String(up?.headers.cookie ?? ''), /moatless_/)
  ws.close()
  const disabled = new Browser()
  await browserSignIn(disabled, stack, `${stack.origin('nows')}/`, 'alice')
  const off = await openWs('nows', cookieFor(disabled, 'nows'))
  t.equal(off.status, 403, 'websockets: false → refused')
})
