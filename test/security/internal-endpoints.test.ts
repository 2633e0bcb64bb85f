/**
 * Attack family: internal endpoints — the proxy's own health, metrics and auth endpoints
 * reached from the internet, or the proxy's reserved namespace forwarded to the upstream (where
 * the upstream may serve something under it, or log the codes it carries).
 *
 * Seen in: exposed Prometheus `/metrics` and Spring Boot Actuator `/actuator/env` leaking
 * secrets and internal topology (a staple of bug bounty reports), Envoy's admin interface
 * reachable on the data plane port, oauth2-proxy's `/oauth2/*` namespace reached in an encoded
 * spelling (`/%6fauth2/...`) that its router and the upstream read differently, and Pomerium's
 * `/.pomerium/` endpoints served on every route.
 *
 * Moatless: /healthz, /readyz and /metrics exist only on the admin listener (src/admin.ts); on
 * the public listener those paths belong to the apps and are decided by their rules. The
 * `/.moatless/` and `/.well-known/moatless/` namespaces are answered by Moatless on every
 * origin (unknown endpoints 404), each endpoint only on its own origin, and never forwarded,
 * whatever the spelling (src/proxy/intake.ts after src/proxy/normalize-path.ts decoded `%2e`).
 */
import t from 'tap'
import { Browser } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw.js'
import { startStack, browserSignIn } from '../helpers/stack.js'
import { JSONH, mark, noCrash } from './helpers.js'

const stack = await startStack({
  apps: { wiki: { public_paths: ['/public/**'], rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] } }
})
t.teardown(() => stack.close())
const alice = new Browser()
await browserSignIn(alice, stack, `${stack.origin('wiki')}/`, 'alice')
const cookie = alice.cookieHeader(stack.origin('wiki'))
const P = stack.port
const PROMETHEUS = /# (HELP|TYPE) |moatless_/

function raw (method: string, target: string, host: string, extra = ''): ReturnType<typeof rawRequest> {
  return rawRequest(P, `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Accept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
}

t.test('health and metrics live on the admin listener only', async (t) => {
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    const admin = await new Browser().request(`${stack.adminUrl}${path}`)
    t.equal(admin.status, 200, `admin ${path}: control`)
  }
  const m = mark(stack)
  for (const path of ['/healthz', '/readyz', '/metrics', '/metrics?name[]=moatless_requests_total']) {
    for (const host of [`auth.localhost:${P}`, `127.0.0.1:${P}`, `localhost:${P}`, `unknown.localhost:${P}`, 'admin']) {
      const res = await raw('GET', path, host)
      t.equal(res.status, 404, `${path} on Host ${host}: 404`)
      t.notMatch(res.body, PROMETHEUS)
    }
    const anon = await raw('GET', path, `wiki.localhost:${P}`)
    t.equal(anon.status, 401, `${path} on an app: the app's path, decided by its rules`)
    t.notMatch(anon.body, PROMETHEUS)
  }
  t.same(m.since(), [], 'nothing forwarded')
  const own = await raw('GET', '/metrics', `wiki.localhost:${P}`, `Cookie: ${cookie}\r\n`)
  t.equal(own.status, 200, 'signed in: the app\'s own /metrics')
  t.notMatch(own.body, PROMETHEUS, 'which is the upstream\'s answer, not Moatless\'s')
  t.equal(m.since()[0]?.url, '/metrics')
})

t.test('unknown /.moatless/ endpoints: 404 on every origin and method, never forwarded', async (t) => {
  const m = mark(stack)
  for (const host of [`wiki.localhost:${P}`, `auth.localhost:${P}`]) {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      for (const path of ['/.moatless', '/.moatless/', '/.moatless/admin', '/.moatless/sign_in/../x', '/.moatless/userinfo', '/.moatless/sign_out/x', '/.well-known/moatless/', '/.well-known/moatless/keys']) {
        const res = await raw(method, path, host, `Cookie: ${cookie}\r\n`)
        t.ok(res.status === 404 || res.status === 400, `${method} ${path} on ${host}: ${res.status}`)
        noCrash(t, res, `${method} ${path}`)
      }
    }
  }
  t.same(m.since(), [], 'nothing forwarded')
})

t.test('the namespace in other spellings is still ours', async (t) => {
  const m = mark(stack)
  const spellings = [
    '/%2emoatless/x', '/%2Emoatless/x', '/.%6doatless/x', '/%2e%6d%6f%61%74%6c%65%73%73/x', '/.moatless%2fx', '/.moatless%2Fsign_out',
    '/.moatless;x/sign_out', '/.moatless/%2e%2e/x', '/.well-known/%6doatless/x', '/%2ewell-known/moatless/x', '/.moatless\\x', '//.moatless/x'
  ]
  for (const path of spellings) {
    const res = await raw('GET', path, `wiki.localhost:${P}`, `Cookie: ${cookie}\r\n`)
    t.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}, not forwarded`)
    noCrash(t, res, path)
  }
  // Decoded spellings of real endpoints reach the endpoint itself, never the upstream.
  const signOut = await raw('GET', '/%2emoatless/sign_%6fut', `wiki.localhost:${P}`)
  t.equal(signOut.status, 302, '/%2emoatless/sign_%6fut is our sign-out')
  const jwks = await raw('GET', '/.well-known/%6doatless/jwks.json', `wiki.localhost:${P}`)
  t.equal(jwks.status, 200, 'and /.well-known/%6doatless/jwks.json our JWKS')
  t.same(m.since(), [], 'nothing forwarded')
})

t.test('each endpoint on its own origin only', async (t) => {
  const m = mark(stack)
  const cases: [string, string, string][] = [
    ['GET', '/.moatless/callback?code=x&state=y', `wiki.localhost:${P}`],
    ['GET', '/.moatless/sign_in', `wiki.localhost:${P}`],
    ['GET', '/.moatless/signed_out', `wiki.localhost:${P}`],
    ['POST', '/.moatless/backchannel_logout', `wiki.localhost:${P}`],
    ['POST', '/.moatless/device/report', `wiki.localhost:${P}`],
    ['GET', '/.moatless/handoff?code=x', `auth.localhost:${P}`],
    ['GET', '/.moatless/sign_out', `unknown.localhost:${P}`],
    ['GET', '/.well-known/moatless/jwks.json', `unknown.localhost:${P}`]
  ]
  for (const [method, path, host] of cases) {
    const res = await raw(method, path, host, `Cookie: ${cookie}\r\n`)
    t.equal(res.status, 404, `${method} ${path} on ${host}`)
  }
  t.same(m.since(), [])
})

t.test('public paths do not open the namespace', async (t) => {
  const m = mark(stack)
  for (const path of ['/public/../.moatless/x', '/public/%2e%2e/.moatless/x', '/public/..;/.moatless/x']) {
    const res = await raw('GET', path, `wiki.localhost:${P}`)
    t.equal(res.status, 400, path)
  }
  const ok = await raw('GET', '/public/.moatless/x', `wiki.localhost:${P}`)
  t.equal(ok.status, 200, '/public/.moatless/x is an app path like any other')
  t.same(m.since().map((s) => s.url), ['/public/.moatless/x'])
})

t.test('the responses Moatless sends itself are not cacheable and carry no stack', async (t) => {
  for (const url of [`${stack.origin('wiki')}/.moatless/nothing`, `${stack.authUrl}/.moatless/sign_in?rd=x`, `${stack.origin('wiki')}/`]) {
    const res = await new Browser().request(url, { headers: JSONH })
    t.equal(res.headers['cache-control'], 'no-store', url)
    noCrash(t, res, url)
  }
})
