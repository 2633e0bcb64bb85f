/**
 * Attack family: the OIDC sign-in flow — login CSRF (the victim is signed in as the attacker),
 * replayed or swapped state / nonce / code / handoff values, IdP mix-up, and a callback URL
 * built from request headers.
 *
 * Seen in: login CSRF (Barth, Jackson, Mitchell, "Robust Defenses for Cross-Site Request
 * Forgery", 2008; RFC 6749 §10.12), authorization code injection and replay (RFC 9700 §4.5, the
 * reason PKCE and nonce exist), the OAuth mix-up attack (Fett, Küsters, Schmitz, CCS 2016;
 * RFC 9207's `iss` parameter), and proxies that build `redirect_uri` from `X-Forwarded-Host`
 * (host header poisoning of password-reset and OAuth links, PortSwigger "HTTP Host header
 * attacks").
 *
 * Moatless (src/authn/routes.ts): state, nonce and PKCE verifier live server-side, single-use
 * (`takeOnce`), and the pending sign-in is bound to the browser by a sealed login cookie; the
 * callback URL given to openid-client comes from config, never from the request
 * (src/authn/oidc.ts `redeem`), so the RFC 9207 `iss` check and the token exchange see our own
 * redirect_uri; handoff codes are single-use, 60 s, for one origin.
 */
import t, { type Test } from 'tap'
import { Browser } from '../helpers/browser.js'
import { signInAtIdp } from '../helpers/idp-login.js'
import { startStack, HTML } from '../helpers/stack.js'
import { JSONH, mark, noCrash } from './helpers.js'

const stack = await startStack({
  apps: {
    wiki: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] },
    chat: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] }
  }
})
t.teardown(() => stack.close())
const WIKI = stack.origin('wiki')

/** Starts a sign-in for the wiki and signs in at the IdP; returns the callback URL, not yet opened. */
async function upToCallback (browser: Browser, user = 'alice', headers: Record<string, string> = {}): Promise<URL> {
  const start = await browser.request(`${WIKI}/`, { headers: HTML })
  const signIn = await browser.request(start.headers.location as string, { headers: { ...HTML, ...headers } })
  const idpOrigin = new URL(stack.idp.issuer).origin
  const atIdp = await browser.follow(signIn.headers.location as string, { headers: HTML }, 20, { stopBefore: (u) => u.origin !== idpOrigin })
  // With a session at the IdP already, it sends the browser straight back.
  const location = atIdp.final.headers.location
  const back = typeof location === 'string' ? new URL(location, atIdp.final.url).href : undefined
  const url = new URL(back ?? (await signInAtIdp(browser, atIdp.final.url, user, `${user}-password`)).url)
  if (url.origin + url.pathname !== `${stack.authUrl}/.moatless/callback`) throw new Error(`IdP returned to ${url.href}`)
  return url
}

const sessionCookies = (b: Browser): string[] => b.storedCookies().filter((c) => c.name.endsWith('moatless_session')).map((c) => c.value)

/** Opens a callback and checks it failed without a session, a redirect or a crash. */
async function refused (t: Test, browser: Browser, url: URL, why: RegExp, what: string): Promise<void> {
  const before = sessionCookies(browser).length
  const res = await browser.request(url.href, { headers: HTML })
  t.equal(res.status, 400, `${what}: 400`)
  t.match(res.body, why, `${what}: says why`)
  t.equal(res.headers.location, undefined, `${what}: no redirect, no handoff`)
  t.equal(sessionCookies(browser).length, before, `${what}: no session cookie`)
  noCrash(t, res, what)
}

t.test('login CSRF: an attacker\'s callback opened in the victim\'s browser is refused', async (t) => {
  const attacker = new Browser()
  const callback = await upToCallback(attacker, 'bob')
  const victim = new Browser()
  await refused(t, victim, callback, /another browser/, 'victim without a pending sign-in')

  const attacker2 = new Browser()
  const callback2 = await upToCallback(attacker2, 'bob')
  const victim2 = new Browser()
  // The victim has a sign-in of its own pending: its login cookie binds its own state only.
  await victim2.request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(`${WIKI}/`)}`, { headers: HTML })
  t.ok(victim2.storedCookies().some((c) => c.name.endsWith('moatless_login')), 'victim holds a login cookie')
  await refused(t, victim2, callback2, /another browser/, 'victim with a sign-in of its own')
})

t.test('state replay: a callback works once', async (t) => {
  const browser = new Browser()
  const callback = await upToCallback(browser)
  const first = await browser.request(callback.href, { headers: HTML })
  t.equal(first.status, 302)
  await refused(t, browser, callback, /expired or was already used/, 'same browser, second time')
  await refused(t, new Browser(), callback, /expired or was already used/, 'another browser')
})

t.test('code replay: a used code with a fresh state is refused by the IdP', async (t) => {
  const browser = new Browser()
  const first = await upToCallback(browser)
  t.equal((await browser.request(first.href, { headers: HTML })).status, 302)
  const other = new Browser()
  const replay = await upToCallback(other)
  replay.searchParams.set('code', first.searchParams.get('code') as string)
  await refused(t, other, replay, /could not be verified/, 'old code, new state, its own browser')
})

t.test('code and state from two sign-ins of one browser: PKCE and nonce do not match', async (t) => {
  const browser = new Browser()
  const a = await upToCallback(browser)
  const b = await upToCallback(browser)
  const swapped = new URL(a.href)
  swapped.searchParams.set('code', b.searchParams.get('code') as string)
  await refused(t, browser, swapped, /could not be verified/, 'state of A with the code of B')
})

t.test('mix-up: a callback whose iss is not our IdP is refused before the code is used', async (t) => {
  for (const [what, change] of [
    ['wrong iss', (u: URL) => u.searchParams.set('iss', 'https://evil.example')],
    ['iss of another local IdP', (u: URL) => u.searchParams.set('iss', stack.idp.issuer.replace('localhost', '127.0.0.1'))],
    ['iss missing (the IdP advertises RFC 9207)', (u: URL) => u.searchParams.delete('iss')],
    ['two iss', (u: URL) => u.searchParams.append('iss', 'https://evil.example')]
  ] as const) {
    const browser = new Browser()
    const callback = await upToCallback(browser)
    change(callback)
    await refused(t, browser, callback, /could not be verified/, what)
  }
})

t.test('the callback URL is ours, whatever the forwarding headers say', async (t) => {
  const spoof = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', forwarded: 'host=evil.example;proto=https', 'x-original-url': '/evil' }
  const browser = new Browser()
  const callback = await upToCallback(browser, 'alice', spoof)
  t.equal(callback.origin, new URL(stack.authUrl).origin, 'the IdP was given our redirect_uri')
  const res = await browser.request(callback.href, { headers: { ...HTML, ...spoof } })
  t.equal(res.status, 302, 'the code exchange used the configured redirect_uri (the IdP would refuse another)')
  t.equal(new URL(res.headers.location as string).origin, WIKI)
  const signIn = await new Browser().request(`${stack.authUrl}/.moatless/sign_in`, { headers: { ...HTML, ...spoof } })
  const authorize = new URL(signIn.headers.location as string)
  t.equal(authorize.searchParams.get('redirect_uri'), `${stack.authUrl}/.moatless/callback`)
  t.notMatch(authorize.href, /evil/)
})

t.test('handoff codes: single-use, one origin, dead with their session', async (t) => {
  const browser = new Browser()
  const callback = await upToCallback(browser)
  const cb = await browser.request(callback.href, { headers: HTML })
  const handoff = cb.headers.location as string
  t.ok(handoff.startsWith(`${WIKI}/.moatless/handoff?code=`))
  const ok = await browser.request(handoff, { headers: HTML })
  t.equal(ok.status, 302)
  const replay = await new Browser().request(handoff, { headers: HTML })
  t.equal(replay.status, 400, 'replayed handoff refused')
  t.equal(replay.headers['set-cookie'], undefined, 'and sets no cookie')

  const b2 = new Browser()
  const cb2 = await b2.request((await upToCallback(b2)).href, { headers: HTML })
  // Signed out at the authenticate origin before the handoff was used.
  await b2.request(`${stack.authUrl}/.moatless/sign_out`, { headers: HTML })
  const late = await b2.request(cb2.headers.location as string, { headers: HTML })
  t.equal(late.status, 400, 'a handoff for an ended session is refused')
  t.match(late.body, /session has ended/)
  t.equal((await b2.request(`${WIKI}/`, { headers: JSONH })).status, 401, 'no session on the app origin')
})

t.test('callback errors are shown escaped, under a CSP, and never redirect', async (t) => {
  const m = mark(stack)
  const res = await new Browser().request(`${stack.authUrl}/.moatless/callback?error=${encodeURIComponent('<script>alert(1)</script>')}&state=x&error_uri=https://evil.example/`, { headers: HTML })
  t.equal(res.status, 400)
  t.notMatch(res.body, /<script>/)
  t.match(res.body, /&lt;script&gt;/)
  t.match(String(res.headers['content-security-policy']), /default-src 'none'/)
  t.equal(res.headers.location, undefined)
  for (const q of ['', '?code=x', '?state=x', '?state=unknown&code=x', '?state=a&state=b&code=x']) {
    const r = await new Browser().request(`${stack.authUrl}/.moatless/callback${q}`, { headers: HTML })
    t.equal(r.status, 400, `callback${q} → 400`)
    noCrash(t, r, `callback${q}`)
  }
  t.same(m.since(), [], 'nothing forwarded')
})

t.test('no code, state or handoff code in any log line', async (t) => {
  const text = stack.logText()
  t.notMatch(text, /[?&](code|state)=/, 'no /.moatless query string logged')
  t.notMatch(text, /handoff\?code/)
})
