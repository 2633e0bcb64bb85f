import t from 'tap'
import { Browser } from '../helpers/browser.js'
import { signInAtIdp, signOutAtIdp } from '../helpers/idp-login.js'
import { startStack, browserSignIn, HTML } from '../helpers/stack.js'

const stack = await startStack({
  apps: {
    wiki: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] },
    chat: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] }
  },
  config: { session: { idle_timeout: '2s' } }
})
t.teardown(() => stack.close())
const JSONH = { accept: 'application/json' }
const sessionCookie = (b: Browser, app: string) => b.cookies(stack.origin(app)).find((c) => c.name === 'moatless_session')

/** Walks a sign-in up to the IdP's redirect back to our callback, without following it. */
async function upToCallback (browser: Browser, app = 'wiki'): Promise<string> {
  const start = await browser.request(`${stack.origin(app)}/`, { headers: HTML })
  const signIn = await browser.request(start.headers.location as string, { headers: HTML })
  const atIdp = await browser.follow(signIn.headers.location as string, { headers: HTML })
  const left = await signInAtIdp(browser, atIdp.final.url, 'alice', 'alice-password')
  t.match(left.url, `${stack.authUrl}/.moatless/callback?`)
  return left.url
}

t.test('state is single-use: a replayed callback fails', async (t) => {
  const browser = new Browser()
  const callback = await upToCallback(browser)
  const first = await browser.request(callback, { headers: HTML })
  t.equal(first.status, 302, 'first use proceeds to the handoff')
  const again = await browser.request(callback, { headers: HTML })
  t.equal(again.status, 400)
  t.match(again.body, /expired or was already used/)
})

t.test('login CSRF: a callback from another browser is refused', async (t) => {
  const attacker = new Browser()
  const callback = await upToCallback(attacker)
  const victim = new Browser()
  const res = await victim.request(callback, { headers: HTML })
  t.equal(res.status, 400)
  t.match(res.body, /another browser/)
  t.equal(sessionCookie(victim, 'wiki'), undefined)
})

t.test('handoff codes: single-use and only for their origin', async (t) => {
  const browser = new Browser()
  const callback = await upToCallback(browser)
  const cb = await browser.request(callback, { headers: HTML })
  const handoff = cb.headers.location as string
  t.match(handoff, `${stack.origin('wiki')}/.moatless/handoff?code=`)
  // Presented on another app origin: refused, and burnt.
  const other = handoff.replace(stack.origin('wiki'), stack.origin('chat'))
  const wrong = await new Browser().request(other, { headers: HTML })
  t.equal(wrong.status, 400)
  const afterWrong = await browser.request(handoff, { headers: HTML })
  t.equal(afterWrong.status, 400, 'a code tried on the wrong origin cannot be used any more')

  const b2 = new Browser()
  const cb2 = await b2.request(await upToCallback(b2), { headers: HTML })
  const h2 = cb2.headers.location as string
  const ok = await b2.request(h2, { headers: HTML })
  t.equal(ok.status, 302)
  t.equal(ok.headers.location, `${stack.origin('wiki')}/`)
  const replay = await new Browser().request(h2, { headers: HTML })
  t.equal(replay.status, 400, 'replayed handoff code refused')
})

t.test('cookies: tampered, tossed across origins, and a fresh session per sign-in', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('wiki')}/`, 'alice')
  const c = sessionCookie(browser, 'wiki')
  t.ok(c, 'session cookie set on the app origin')
  const setCookie = await (async () => {
    const b = new Browser()
    const cb = await b.request(await upToCallback(b), { headers: HTML })
    const h = await b.request(cb.headers.location as string, { headers: HTML })
    return String((h.headers['set-cookie'] as string[])[0])
  })()
  t.match(setCookie, /HttpOnly/)
  t.match(setCookie, /SameSite=Lax/)
  t.notMatch(setCookie, /Domain=/i, 'host-only')
  const value = c?.value ?? ''
  const flipped = value.slice(0, 20) + (value[20] === 'A' ? 'B' : 'A') + value.slice(21)
  const tampered = await new Browser().request(`${stack.origin('wiki')}/`, { headers: { ...JSONH, cookie: `moatless_session=${flipped}` } })
  t.equal(tampered.status, 401, 'tampered cookie is no session')
  const tossed = await new Browser().request(`${stack.origin('chat')}/`, { headers: { ...JSONH, cookie: `moatless_session=${value}` } })
  t.equal(tossed.status, 401, 'a wiki cookie is no session on chat')
  const good = await new Browser().request(`${stack.origin('wiki')}/`, { headers: { ...JSONH, cookie: `moatless_session=${value}` } })
  t.equal(good.status, 200)

  const again = new Browser()
  await browserSignIn(again, stack, `${stack.origin('wiki')}/`, 'alice')
  const sessions = await stack.moatless.store.listSessions({ user: 'alice@example.com' })
  t.ok(new Set(sessions.map((s) => s.id)).size >= 2, 'every sign-in created its own session')
})

t.test('open redirects: rd must be a configured app origin', async (t) => {
  const vectors = [
    'https://evil.example/', '//evil.example/', '/\\evil.example', 'http://evil.example@wiki.localhost/',
    `http://wiki.localhost:${stack.port}@evil.example/`, `http://wiki.localhost:${stack.port}.evil.example/`,
    'javascript:alert(1)', 'data:text/html,x', `http://wiki.localhost:${stack.port}\\@evil.example/`,
    `http:\\\\wiki.localhost:${stack.port}/`, `\thttp://wiki.localhost:${stack.port}/`, `http://wiki.localhost:${stack.port}\n.evil/`,
    'http://localhost/', `https://wiki.localhost:${stack.port}/`, `http://WIKI.localhost:${stack.port}.evil/`, '', ' ', 'http:evil.example',
    `http://auth.localhost:${stack.port}/`, `ftp://wiki.localhost:${stack.port}/`
  ]
  for (const rd of vectors) {
    const res = await new Browser().request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(rd)}`, { headers: HTML })
    t.equal(res.status, 400, `rd=${JSON.stringify(rd)} refused`)
    t.equal(res.headers.location, undefined)
  }
  const good = await new Browser().request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(`${stack.origin('wiki')}/a?b=c`)}`, { headers: HTML })
  t.equal(good.status, 302)
  t.ok(String(good.headers.location).startsWith(stack.idp.issuer), 'to the IdP')
})

t.test('sign-out ends the session on every origin and at the IdP', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('wiki')}/`, 'alice')
  const chat = await browser.follow(`${stack.origin('chat')}/`, { headers: HTML })
  t.equal(chat.final.status, 200)
  const out = await browser.request(`${stack.origin('chat')}/.moatless/sign_out`, { headers: HTML })
  t.equal(out.status, 302)
  const endSession = out.headers.location as string
  t.ok(endSession.startsWith(stack.idp.issuer), 'goes to the IdP end_session_endpoint')
  t.match(endSession, /post_logout_redirect_uri=/)
  const back = await signOutAtIdp(browser, endSession)
  t.match(String(back.url), `${stack.authUrl}/.moatless/signed_out`)
  const wiki = await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })
  t.equal(wiki.status, 401, 'the wiki cookie is no session any more')
  const wikiNav = await browser.request(`${stack.origin('wiki')}/`, { headers: HTML })
  t.equal(wikiNav.status, 302, 'asked to sign in again')
})

t.test('idle timeout ends a session', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('wiki')}/`, 'alice')
  t.equal((await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })).status, 200)
  await new Promise((resolve) => setTimeout(resolve, 2200))
  t.equal((await browser.request(`${stack.origin('wiki')}/`, { headers: JSONH })).status, 401)
})
