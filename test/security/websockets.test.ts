/**
 * Attack family: websockets — an upgrade that skips the checks a plain request gets, or a
 * connection that outlives the session or rule that allowed it.
 *
 * Seen in: proxies that authorize the HTTP request but pass `Upgrade` requests straight through
 * (Kubernetes API server CVE-2018-1002105, an upgraded connection kept after a failed
 * authorization), Cross-Site WebSocket Hijacking (Christian Schneider, 2013: cookies sent with a
 * cross-site handshake, the app must check Origin), and long-lived sockets that survive logout
 * or revocation (OWASP WebSocket Security Cheat Sheet).
 *
 * Moatless decides the upgrade request like any other (intake, authn, device trust, authz run
 * first; src/proxy/forward.ts hands on the upgrade only after an allow, only for apps with
 * `websockets: true`), strips identity headers from the handshake as from any request, keeps
 * the Origin for the app to check, and closes open sockets when their session ends or the rules
 * stop allowing them (src/proxy/connections.ts; test/integration/open-connections.test.ts).
 */
import t from 'tap'
import WebSocket from 'ws'
import { Browser } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw.js'
import { startStack, browserSignIn, HTML } from '../helpers/stack.js'
import { mark, sleep } from './helpers.js'

const rules = [
  { name: 'nobody-in-admin', deny: { paths: ['/admin/**'] } },
  { name: 'staff', allow: { domains: ['example.com'] } }
]
const stack = await startStack({
  apps: {
    chat: { websockets: true, identity_headers: true, public_paths: ['/public/**'], rules },
    plain: { rules }
  }
})
t.teardown(() => stack.close())

interface Opened { status: number; ws: WebSocket; closed: Promise<void> }
function openWs (app: string, path: string, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${stack.port}${path}`, { headers: { host: `${app}.localhost:${stack.port}`, ...headers } })
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
    ws.once('open', () => resolve({ status: 101, ws, closed }))
    ws.once('unexpected-response', (_req, res) => { resolve({ status: res.statusCode ?? 0, ws, closed }); res.resume() })
    ws.once('error', () => resolve({ status: 0, ws, closed }))
  })
}
const cookieOf = (b: Browser, app: string): string => b.cookieHeader(stack.origin(app))

const alice = new Browser()
await browserSignIn(alice, stack, `${stack.origin('chat')}/`, 'alice')
await alice.follow(`${stack.origin('plain')}/`, { headers: HTML })

t.test('upgrades without a valid session are refused before the upstream', async (t) => {
  const m = mark(stack)
  const cases: [string, Record<string, string>, number][] = [
    ['no cookie', {}, 401],
    ['a forged cookie', { cookie: 'moatless_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, 401],
    ['another app\'s cookie', { cookie: `moatless_session=${alice.cookies(stack.origin('plain'))[0]?.value ?? ''}` }, 401],
    ['a forged bearer token', { authorization: 'Bearer aaa.bbb.ccc' }, 401],
    ['spoofed identity headers only', { 'x-moatless-user': 'user-1001', 'x-moatless-email': 'alice@example.com', 'x-forwarded-user': 'alice' }, 401]
  ]
  for (const [name, headers, status] of cases) {
    const { status: got, ws } = await openWs('chat', '/socket', headers)
    t.equal(got, status, `${name} → ${status}`)
    ws.terminate()
  }
  t.same(m.since(), [], 'no handshake reached the upstream')
  t.equal(stack.upstream.sockets.length, 0)
})

t.test('upgrades are decided like requests: paths, rules, websockets: false', async (t) => {
  const m = mark(stack)
  const denied = await openWs('chat', '/admin/socket', { cookie: cookieOf(alice, 'chat') })
  t.equal(denied.status, 403, 'a denied path')
  denied.ws.terminate()
  const off = await openWs('plain', '/socket', { cookie: cookieOf(alice, 'plain') })
  t.equal(off.status, 403, 'an app without websockets')
  off.ws.terminate()
  for (const path of ['/public/../admin/socket', '/public/%2e%2e/admin', '/admin;x/socket', '//admin']) {
    const res = await rawRequest(stack.port, `GET ${path} HTTP/1.1\r\nHost: chat.localhost:${stack.port}\r\nCookie: ${cookieOf(alice, 'chat')}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    t.equal(res.status, 400, `${path} → 400`)
  }
  t.same(m.since(), [], 'no handshake reached the upstream')
})

t.test('an allowed handshake carries our identity only, and the Origin for the app to check', async (t) => {
  const m = mark(stack)
  const { status, ws } = await openWs('chat', '/socket', {
    cookie: cookieOf(alice, 'chat'), origin: 'https://evil.example', 'x-moatless-user': 'root', x_moatless_groups: 'admins', 'x-moatless-jwt-assertion': 'forged', 'x-client-cert': 'forged'
  })
  t.equal(status, 101)
  // The client's 101 comes first; the proxy opens the upstream socket right after.
  for (let i = 0; i < 50 && m.since().length === 0; i++) await sleep(20)
  const seen = m.since()
  t.equal(seen.length, 1)
  const h = seen[0]?.headers ?? {}
  t.equal(h['x-moatless-user'], 'user-1001')
  t.equal(h['x-moatless-groups'], 'engineering')
  t.match(String(h['x-moatless-jwt-assertion']), /^eyJhbGciOiJFUzI1NiI/)
  t.equal(h['x-client-cert'], undefined)
  t.equal(h['x_moatless_groups'], undefined)
  t.notMatch(String(h.cookie ?? ''), /moatless_/, 'our cookie is not forwarded')
  t.equal(h.origin, 'https://evil.example', 'Origin passes unchanged: cross-site hijacking is the app\'s to refuse')
  ws.close()
})

t.test('after sign-out or revocation: the socket closes and the cookie opens nothing', async (t) => {
  const b = new Browser()
  await browserSignIn(b, stack, `${stack.origin('chat')}/`, 'alice')
  const cookie = cookieOf(b, 'chat')
  const first = await openWs('chat', '/socket', { cookie })
  t.equal(first.status, 101)
  await b.request(`${stack.origin('chat')}/.moatless/sign_out`, { headers: HTML })
  const closedAtSignOut = await Promise.race([first.closed.then(() => true), sleep(2000).then(() => false)])
  t.ok(closedAtSignOut, 'closed at sign-out')
  const again = await openWs('chat', '/socket', { cookie })
  t.equal(again.status, 401, 'the old cookie after sign-out')
  again.ws.terminate()

  const c = new Browser()
  await browserSignIn(c, stack, `${stack.origin('chat')}/`, 'alice')
  const cookie2 = cookieOf(c, 'chat')
  const second = await openWs('chat', '/socket', { cookie: cookie2 })
  t.equal(second.status, 101)
  const sessions = await stack.moatless.store.listSessions({ user: 'alice@example.com' })
  await stack.moatless.sessions.revokeMany(sessions.map((s) => s.id))
  const closedAtRevocation = await Promise.race([second.closed.then(() => true), sleep(2000).then(() => false)])
  t.ok(closedAtRevocation, 'closed when the session is revoked (`moatless sessions revoke`)')
  const m = mark(stack)
  const third = await openWs('chat', '/socket', { cookie: cookie2 })
  t.equal(third.status, 401, 'the revoked session\'s cookie')
  third.ws.terminate()
  t.same(m.since(), [])
})
