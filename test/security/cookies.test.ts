/**
 * Attack family: session cookies — tampered or forged values, a cookie of one origin presented
 * on another ("cookie tossing" between sibling apps), session fixation, and replay after
 * sign-out.
 *
 * Seen in: cookie tossing between GitHub Pages subdomains and github.com (GitHub, 2013, the
 * reason for `github.io`), Pomerium and oauth2-proxy session cookies scoped to a parent domain
 * (oauth2-proxy `--cookie-domain` shared across apps), session fixation (Kolšek, "Session
 * Fixation Vulnerability in Web-based Applications", 2002; OWASP), padding-oracle and
 * bit-flipping attacks on encrypted but unauthenticated cookies (ASP.NET MS10-070), and sessions
 * that live on in a stateless cookie after sign-out (OWASP ASVS 3.3.1).
 *
 * Moatless (src/authn/cookies.ts, src/authn/seal.ts, src/authn/session-stage.ts): cookie values
 * are AES-256-GCM sealed with a key derived for the purpose "cookie" and name the one origin
 * they were issued for; each app origin has its own host-only cookie (`__Host-` and Secure on
 * https, see test/integration/tls.test.ts); the session itself lives in the store, is created
 * fresh at every callback, and is deleted at sign-out.
 */
import t from 'tap'
import { Sealer } from '../../src/authn/seal.js'
import { Browser } from '../helpers/browser.js'
import { startStack, browserSignIn, HTML, SESSION_SECRET } from '../helpers/stack.js'
import { JSONH, mark } from './helpers.js'

const stack = await startStack({
  apps: {
    wiki: { identity_headers: true, rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] },
    chat: { identity_headers: true, rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] }
  }
})
t.teardown(() => stack.close())
const WIKI = stack.origin('wiki')
const CHAT = stack.origin('chat')
const authOrigin = new URL(stack.authUrl).origin

const cookie = (b: Browser, origin: string): string => b.cookies(origin).find((c) => c.name === 'moatless_session')?.value ?? ''
async function statusWith (origin: string, value: string): Promise<number> {
  const res = await new Browser().request(`${origin}/`, { headers: { ...JSONH, cookie: `moatless_session=${value}` } })
  return res.status
}
async function sessionIdOf (email: string): Promise<string> {
  const sessions = await stack.moatless.store.listSessions({ user: email })
  const last = sessions.sort((a, b) => a.created_at - b.created_at).at(-1)
  if (last === undefined) throw new Error(`no session for ${email}`)
  return last.id
}

const alice = new Browser()
await browserSignIn(alice, stack, `${WIKI}/`, 'alice')
await alice.follow(`${CHAT}/`, { headers: HTML })
const aliceWiki = cookie(alice, WIKI)
const aliceChat = cookie(alice, CHAT)
const aliceAuth = cookie(alice, stack.authUrl)
const aliceSession = await sessionIdOf('alice@example.com')

t.test('the cookies Moatless sets: host-only, HttpOnly, SameSite=Lax, Path=/', async (t) => {
  const ours = alice.storedCookies().filter((c) => c.name.startsWith('moatless_'))
  t.ok(ours.length >= 3, 'on the authenticate origin and both app origins')
  for (const c of ours) {
    t.equal(c.hostOnly, true, `${c.name} on ${c.domain}: no Domain attribute`)
    t.equal(c.httpOnly, true)
    t.equal(c.sameSite, 'Lax')
    t.equal(c.path, '/')
  }
  t.not(aliceWiki, aliceChat, 'each origin its own value')
})

t.test('tampered and forged values are no session, and nothing is forwarded', async (t) => {
  const m = mark(stack)
  t.equal(await statusWith(WIKI, aliceWiki), 200, 'control: the real cookie works')
  const flip = (v: string, i: number): string => v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1)
  const other = new Sealer('another-secret-0123456789abcdef-0123456789', 'cookie')
  const tokens = new Sealer(SESSION_SECRET, 'tokens')
  const cookies = new Sealer(SESSION_SECRET, 'cookie')
  const forged: [string, string][] = [
    ['a flipped byte in the IV', flip(aliceWiki, 2)],
    ['a flipped byte in the ciphertext', flip(aliceWiki, 20)],
    ['a flipped byte in the tag', flip(aliceWiki, aliceWiki.length - 3)],
    ['truncated', aliceWiki.slice(0, -4)],
    ['extended', aliceWiki + 'AAAA'],
    ['empty', ''],
    ['not base64url', '!!!!' + aliceWiki.slice(4)],
    ['too long', 'A'.repeat(9000)],
    ['the session id in clear', aliceSession],
    ['sealed with another secret', other.seal({ s: aliceSession, o: WIKI })],
    ['sealed for another purpose (stored tokens)', tokens.seal({ s: aliceSession, o: WIKI })],
    ['sealed right, but for chat', cookies.seal({ s: aliceSession, o: CHAT })],
    ['sealed right, but for the authenticate origin', cookies.seal({ s: aliceSession, o: authOrigin })],
    ['sealed right, unknown session', cookies.seal({ s: 'x'.repeat(43), o: WIKI })],
    ['sealed right, session id not a string', cookies.seal({ s: 42, o: WIKI })],
    ['sealed right, no origin', cookies.seal({ s: aliceSession })]
  ]
  for (const [name, value] of forged) t.equal(await statusWith(WIKI, value), 401, name)
  t.equal(m.since().length, 1, 'only the control request was forwarded')
})

t.test('tossing: a cookie of one origin is no session on another', async (t) => {
  const m = mark(stack)
  t.equal(await statusWith(CHAT, aliceWiki), 401, 'the wiki cookie on chat')
  t.equal(await statusWith(WIKI, aliceChat), 401, 'the chat cookie on the wiki')
  t.equal(await statusWith(WIKI, aliceAuth), 401, 'the authenticate origin\'s cookie on the wiki')
  const res = await new Browser().request(`${WIKI}/`, { headers: { ...JSONH, cookie: `moatless_session=${aliceChat}; moatless_session=${aliceAuth}; __Host-moatless_session=${aliceWiki}` } })
  t.equal(res.status, 401, 'nor does the https name count on an http origin')
  t.same(m.since(), [])
})

t.test('our cookies never reach the upstream, in any case or prefix', async (t) => {
  const m = mark(stack)
  const res = await new Browser().request(`${WIKI}/`, {
    headers: { ...JSONH, cookie: `app=1; moatless_session=${aliceWiki}; Moatless_Session=x; __Host-moatless_session=y; __host-moatless_login=z; moatless_login=w; other=2` }
  })
  t.equal(res.status, 200)
  t.equal(m.since()[0]?.headers.cookie, 'app=1; other=2')
})

t.test('fixation: a cookie planted before sign-in does not survive it', async (t) => {
  // The attacker signs in, keeps the cookie values, and signs out: values it knows, that name a
  // session that is gone. They are planted in the victim's browser (a sibling subdomain can do
  // that on plain http).
  const attacker = new Browser()
  await browserSignIn(attacker, stack, `${WIKI}/`, 'bob')
  const planted = { wiki: cookie(attacker, WIKI), auth: cookie(attacker, stack.authUrl) }
  const bobSession = await sessionIdOf('bob@example.com')
  await attacker.request(`${WIKI}/.moatless/sign_out`, { headers: HTML })

  const victim = new Browser()
  victim.setCookie(WIKI, `moatless_session=${planted.wiki}; Path=/; HttpOnly`)
  victim.setCookie(stack.authUrl, `moatless_session=${planted.auth}; Path=/; HttpOnly`)
  const { final, chain } = await browserSignIn(victim, stack, `${WIKI}/`, 'alice')
  t.equal(final.status, 200)
  t.ok(chain.some((step) => step.includes(new URL(stack.idp.issuer).origin)), 'the victim had to sign in at the IdP')
  t.not(cookie(victim, WIKI), planted.wiki, 'a new app cookie')
  t.not(cookie(victim, stack.authUrl), planted.auth, 'a new authenticate-origin cookie')
  const victimSession = await sessionIdOf('alice@example.com')
  t.not(victimSession, bobSession, 'a new server-side session')
  t.equal(await statusWith(WIKI, planted.wiki), 401, 'the planted value is still nothing')
  const m = mark(stack)
  await victim.request(`${WIKI}/`, { headers: JSONH })
  t.equal(m.since()[0]?.headers['x-moatless-email'], 'alice@example.com', 'the victim is herself')
})

t.test('replay after sign-out: every cookie of the session is dead, on every origin', async (t) => {
  const b = new Browser()
  await browserSignIn(b, stack, `${WIKI}/`, 'alice')
  await b.follow(`${CHAT}/`, { headers: HTML })
  const values = { wiki: cookie(b, WIKI), chat: cookie(b, CHAT), auth: cookie(b, stack.authUrl) }
  t.equal(await statusWith(CHAT, values.chat), 200, 'control')
  const out = await b.request(`${WIKI}/.moatless/sign_out`, { headers: HTML })
  t.equal(out.status, 302)
  t.match(String(out.headers['set-cookie']), /moatless_session=;.*Max-Age=0/, 'the wiki cookie is cleared')
  const m = mark(stack)
  t.equal(await statusWith(WIKI, values.wiki), 401, 'the wiki cookie replayed')
  t.equal(await statusWith(CHAT, values.chat), 401, 'the chat cookie replayed (same session)')
  const signIn = await new Browser().request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(`${WIKI}/`)}`, { headers: { ...HTML, cookie: `moatless_session=${values.auth}` } })
  t.equal(new URL(signIn.headers.location as string).origin, new URL(stack.idp.issuer).origin, 'the authenticate cookie replayed: back to the IdP, no silent handoff')
  t.same(m.since(), [], 'nothing forwarded')
})
