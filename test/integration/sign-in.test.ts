import t from 'tap'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { Browser } from '../helpers/browser.js'
import { startStack, browserSignIn, HTML } from '../helpers/stack.js'

const cookieJar: string[] = []
const stack = await startStack({
  apps: {
    wiki: {
      public_paths: ['/healthz', '/static/**'],
      identity_headers: true,
      rules: [
        { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
        { name: 'staff', allow: { domains: ['example.com'] } }
      ]
    },
    admin: {
      rules: [{ name: 'engineers-only', allow: { groups: ['engineering'] } }]
    }
  }
})
t.teardown(() => stack.close())

t.test('browser sign-in: app → IdP → callback → handoff → app, with a verified assertion', async (t) => {
  const browser = new Browser()
  const { final, chain } = await browserSignIn(browser, stack, `${stack.origin('wiki')}/docs/page?x=1`, 'alice')
  for (const c of browser.storedCookies()) cookieJar.push(c.value)
  t.equal(final.status, 200, `chain: ${chain.join(' → ')}`)
  t.match(chain[0], /^302 /, 'first answer is a redirect to sign-in')
  const seen = stack.upstream.requests.at(-1)
  t.ok(seen)
  t.equal(seen?.url, '/docs/page?x=1', 'upstream saw the original path and query')
  t.equal(seen?.headers['x-moatless-email'], 'alice@example.com')
  t.equal(seen?.headers['x-moatless-groups'], 'engineering')
  t.notOk(String(seen?.headers.cookie ?? '').includes('moatless_'), 'our cookies never reach the upstream')
  const jwt = seen?.headers['x-moatless-jwt-assertion'] as string
  // Fetch the JWKS through the test browser (*.localhost does not resolve in Node).
  const jwksRes = await browser.request(`${stack.origin('wiki')}/.well-known/moatless/jwks.json`)
  t.equal(jwksRes.status, 200)
  const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(JSON.parse(jwksRes.body)), {
    issuer: stack.authUrl,
    audience: stack.origin('wiki'),
    algorithms: ['ES256']
  })
  t.equal(protectedHeader.alg, 'ES256')
  t.equal(payload.email, 'alice@example.com')
  t.same(payload.groups, ['engineering'])
  t.equal(payload.device_trust, 'none')
  t.equal(payload.device_id, null)
  t.ok((payload.exp as number) - (payload.iat as number) <= 300, 'assertion lives at most 5 minutes')

  // A second app: the auth origin already has a session, so no IdP round trip.
  const admin = await browser.follow(`${stack.origin('admin')}/`, { headers: HTML })
  t.equal(admin.final.status, 200, 'signed in on the second app through the handoff alone')
  t.notOk(admin.chain.some((h) => h.url.startsWith(stack.idp.issuer)), 'no IdP visit for the second app')
})

t.test('bob: allowed on the wiki, denied its admin paths and the admin app, with explanations', async (t) => {
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stack, `${stack.origin('wiki')}/`, 'bob')
  t.equal(final.status, 200)
  const denied = await browser.request(`${stack.origin('wiki')}/admin/users`, { headers: HTML })
  t.equal(denied.status, 403)
  t.match(denied.body, /no-contractors-in-admin/)
  t.equal(denied.headers['cache-control'], 'no-store')
  t.match(String(denied.headers['content-security-policy']), /default-src 'none'/)
  const json = await browser.request(`${stack.origin('wiki')}/admin`, { headers: { accept: 'application/json' } })
  t.equal(json.status, 403)
  const body = JSON.parse(json.body) as Record<string, unknown>
  t.equal(body.error, 'forbidden')
  t.equal(body.rule, 'no-contractors-in-admin')
  t.type(body.request_id, 'string')
  const adm = await browser.follow(`${stack.origin('admin')}/`, { headers: HTML })
  t.equal(adm.final.status, 403)
  t.match(adm.final.body, /engineering/, 'the deny page says which group is needed')
})

t.test('no session: browsers are redirected, API clients get 401', async (t) => {
  const browser = new Browser()
  const nav = await browser.request(`${stack.origin('wiki')}/x`, { headers: HTML })
  t.equal(nav.status, 302)
  const loc = new URL(nav.headers.location as string)
  t.equal(loc.origin, stack.authUrl)
  t.equal(loc.pathname, '/.moatless/sign_in')
  t.equal(loc.searchParams.get('rd'), `${stack.origin('wiki')}/x`)
  const api = await browser.request(`${stack.origin('wiki')}/x`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401)
  t.equal(api.headers['www-authenticate'], 'Bearer')
  t.same(JSON.parse(api.body).error, 'unauthenticated')
  const pub = await browser.request(`${stack.origin('wiki')}/static/app.css`, { headers: { 'x-moatless-user': 'root' } })
  t.equal(pub.status, 200, 'public path needs no sign-in')
  const seen = stack.upstream.requests.at(-1)
  t.equal(seen?.headers['x-moatless-user'], undefined, 'spoofed identity header stripped on public paths')
  t.equal(seen?.headers['x-moatless-jwt-assertion'], undefined, 'no assertion for anonymous public requests')
})

t.test('unknown host → 404, nothing forwarded', async (t) => {
  const before = stack.upstream.requests.length
  const res = await new Browser().request(`http://nope.localhost:${stack.port}/`)
  t.equal(res.status, 404)
  t.equal(stack.upstream.requests.length, before)
})

t.test('every request is logged once with the SPEC keys, and no secrets', async (t) => {
  const decisions = stack.logs.filter((l) => l.msg === 'decision')
  t.ok(decisions.length > 5)
  const keys = ['time', 'request_id', 'app', 'method', 'path', 'user', 'device_id', 'device_trust', 'decision', 'rule', 'reason', 'status', 'duration']
  for (const d of decisions) for (const k of keys) t.ok(k in d, `decision line has ${k}`)
  const text = stack.logText()
  for (const c of cookieJar) t.notOk(text.includes(c), 'no cookie value in logs')
  t.ok(cookieJar.length >= 2)
  t.notMatch(text, /moatless_session=/, 'no cookie in logs')
  t.notOk(text.includes('test-client-secret'), 'no client secret in logs')
  t.notMatch(text, /eyJ[A-Za-z0-9_-]{10,}\./, 'no JWT in logs')
  t.notMatch(text, /code=|state=/, 'no codes or state in logs')
})
