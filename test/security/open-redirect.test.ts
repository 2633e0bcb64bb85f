/**
 * Attack family: open redirects — a sign-in or sign-out endpoint sends the browser wherever a
 * parameter says, so a link on the trusted domain lands on an attacker's page (phishing), or
 * carries a code or token there.
 *
 * Seen in: oauth2-proxy GHSA-qqxw-m5fj-f7gv / CVE-2020-5233 (`/\evil.com` passed the `//`
 * check), GHSA-j7px-6hwj-hpjg / CVE-2020-11053 (whitespace between the slashes),
 * GHSA-5m6c-jp6f-2vcv / CVE-2020-4037 (`rd` validated by a regex the browser reads differently),
 * bitly/oauth2_proxy #228 (`//domain.com/` as rd), and the Detectify write-up on chaining open
 * redirects with OAuth to steal tokens. Browsers read `\` as `/`, drop tabs and newlines inside
 * URLs, take `user@host` as a host, and map `。` to `.` in host names.
 *
 * Moatless: `rd` must be an absolute URL on a configured app origin, and anything a browser and
 * a URL parser could read differently is refused outright (src/authn/return-to.ts); the sign-out
 * target is fixed (the IdP's end_session_endpoint with a fixed post_logout_redirect_uri, or our
 * signed-out page), and the handoff returns only to its own origin (src/authn/routes.ts).
 */
import t from 'tap'
import { Browser } from '../helpers/browser.js'
import { signInAtIdp } from '../helpers/idp-login.js'
import { rawRequest } from '../helpers/raw.js'
import { startStack, browserSignIn, HTML } from '../helpers/stack.js'
import { mark, noCrash, show } from './helpers.js'

const stack = await startStack({
  apps: {
    wiki: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] },
    chat: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] }
  }
})
t.teardown(() => stack.close())
const P = stack.port
const WIKI = stack.origin('wiki')
const authOrigin = new URL(stack.authUrl).origin
const idpOrigin = new URL(stack.idp.issuer).origin

/** Where a Location header would take a browser (null: no redirect). */
function target (location: unknown, base: string): URL | null {
  return typeof location === 'string' ? new URL(location, base) : null
}

const RD_VECTORS: string[] = [
  'https://evil.example/',
  'http://evil.example/',
  '//evil.example/',
  '///evil.example/',
  '/\\evil.example',
  '\\/evil.example',
  '\\\\evil.example',
  '/ /evil.example',
  '/\t/evil.example',
  '/%09/evil.example',
  '/%2F%2Fevil.example',
  'evil.example',
  '/relative/path',
  `http://evil.example@wiki.localhost:${P}/`,
  `http://wiki.localhost:${P}@evil.example/`,
  `http://wiki.localhost:${P}%40evil.example/`,
  `http://wiki.localhost:${P}%2f@evil.example/`,
  `http://wiki.localhost:${P}.evil.example/`,
  `http://wiki.localhost:${P}\\@evil.example/`,
  `http://wiki.localhost:${P}.evil.example#@wiki.localhost:${P}/`,
  'http://evil.example#@wiki.localhost/',
  'http://evil.example?@wiki.localhost/',
  `http://evil.example/http://wiki.localhost:${P}/`,
  `http:\\\\wiki.localhost:${P}/`,
  `http:/wiki.localhost:${P}/`,
  `http:wiki.localhost:${P}/`,
  `http:///wiki.localhost:${P}/`,
  'http:evil.example',
  `\thttp://wiki.localhost:${P}/`,
  ` http://wiki.localhost:${P}/`,
  `http://wiki.localhost:${P}/\n`,
  `http://wiki.localhost:${P}\n.evil.example/`,
  `http://wiki.localhost:${P}\r\nLocation: https://evil.example/`,
  `http://wiki\u3002localhost:${P}/`,
  `http://\uff57iki.localhost:${P}/`,
  `http://wiki.localhost:${P}\u2028/`,
  `http://wiki%2elocalhost:${P}/`,
  `http://WIKI.localhost:${P}.evil.example/`,
  `http://wiki.localhost.:${P}/`,
  `http://wiki.localhost:0${P}/`,
  `http://wiki.localhost:${P}:80/`,
  `https://wiki.localhost:${P}/`,
  `ws://wiki.localhost:${P}/`,
  `ftp://wiki.localhost:${P}/`,
  `http://a:b@wiki.localhost:${P}/`,
  `http://@wiki.localhost:${P}/`,
  `http://auth.localhost:${P}/`,
  `http://localhost:${P}/`,
  `http://127.0.0.1:${P}/`,
  `http://[::1]:${P}/`,
  'javascript:alert(document.domain)',
  'JaVaScRiPt:alert(1)',
  'java\tscript:alert(1)',
  `javascript://wiki.localhost:${P}/%0aalert(1)`,
  'data:text/html,<script>alert(1)</script>',
  'vbscript:msgbox(1)',
  `blob:http://wiki.localhost:${P}/00000000-0000-0000-0000-000000000000`,
  'file:///etc/passwd',
  '',
  ' '
]

t.test(`rd on sign_in: ${RD_VECTORS.length} open-redirect vectors refused`, async (t) => {
  t.ok(RD_VECTORS.length >= 30)
  for (const rd of RD_VECTORS) {
    const res = await new Browser().request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(rd)}`, { headers: HTML })
    t.equal(res.status, 400, `rd=${show(rd)} refused`)
    t.equal(res.headers.location, undefined, 'no redirect at all')
    noCrash(t, res, show(rd))
  }
})

t.test('rd as written on the wire: unencoded, double-encoded, repeated', async (t) => {
  const queries = [
    'rd=//evil.example/',
    'rd=https://evil.example/',
    'rd=%2F%2Fevil.example',
    'rd=%252F%252Fevil.example',
    'rd=https:%2F%2Fevil.example',
    `rd=${encodeURIComponent(`${WIKI}/`)}&rd=https://evil.example/`,
    `rd=https://evil.example/&rd=${encodeURIComponent(`${WIKI}/`)}`,
    'rd[]=https://evil.example/',
    'rd=%00https://evil.example/'
  ]
  for (const q of queries) {
    const res = await rawRequest(P, `GET /.moatless/sign_in?${q} HTTP/1.1\r\nHost: auth.localhost:${P}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`)
    const location = /\r\nlocation: ([^\r]*)/i.exec(res.head)?.[1]
    const to = target(location, stack.authUrl)
    t.ok(to === null || to.origin === idpOrigin, `${q}: no redirect, or to the IdP only (got ${location ?? 'none'})`)
    if (to !== null) t.equal(to.searchParams.get('redirect_uri'), `${stack.authUrl}/.moatless/callback`, `${q}: the IdP returns to our callback only`)
    t.notMatch(location ?? '', /evil/, `${q}: evil.example appears nowhere in the Location`)
    noCrash(t, res, q)
  }
})

/** Signs in from sign_in?rd=<rd> and returns where the handoff finally sends the browser. */
async function landingAfterSignIn (rd: string): Promise<URL | null> {
  const browser = new Browser()
  const start = await browser.request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(rd)}`, { headers: HTML })
  if (start.status !== 302) return null
  const atIdp = await browser.follow(start.headers.location as string, { headers: HTML })
  const left = await signInAtIdp(browser, atIdp.final.url, 'alice', 'alice-password')
  const callback = await browser.request(left.url, { headers: HTML })
  const handoff = target(callback.headers.location, left.url)
  if (handoff === null) return null
  if (handoff.origin !== WIKI || handoff.pathname !== '/.moatless/handoff') throw new Error(`callback went to ${handoff.href}`)
  const back = await browser.request(handoff.href, { headers: HTML })
  return target(back.headers.location, handoff.href)
}

t.test('accepted rd values only ever land on their own app origin', async (t) => {
  const cases = [`${WIKI}/`, `${WIKI}//evil.example/`, `${WIKI}/%2F%2Fevil.example`, `${WIKI}/@evil.example`, `${WIKI}?next=https://evil.example/`, `HTTP://WIKI.LOCALHOST:${P}/x`]
  for (const rd of cases) {
    const landing = await landingAfterSignIn(rd)
    t.ok(landing !== null, `${rd}: the sign-in completes`)
    t.equal(landing?.origin, WIKI, `${rd}: lands on ${WIKI}`)
  }
})

t.test('the handoff returns to its stored path only, whatever else the URL carries', async (t) => {
  const browser = new Browser()
  const start = await browser.request(`${stack.authUrl}/.moatless/sign_in?rd=${encodeURIComponent(`${WIKI}/docs`)}`, { headers: HTML })
  const atIdp = await browser.follow(start.headers.location as string, { headers: HTML })
  const left = await signInAtIdp(browser, atIdp.final.url, 'alice', 'alice-password')
  const callback = await browser.request(left.url, { headers: HTML })
  const handoff = new URL(callback.headers.location as string)
  for (const [k, v] of [['rd', 'https://evil.example/'], ['return_to', '//evil.example'], ['next', 'https://evil.example/'], ['p', '//evil.example']]) handoff.searchParams.append(k as string, v as string)
  const back = await browser.request(handoff.href, { headers: HTML })
  t.equal(back.status, 302)
  t.equal(back.headers.location, `${WIKI}/docs`, 'the path given at sign-in, nothing from the handoff URL')

  for (const code of ['', 'x', 'A'.repeat(500), '../../evil.example', 'https://evil.example/']) {
    const res = await new Browser().request(`${WIKI}/.moatless/handoff?code=${encodeURIComponent(code)}&rd=https://evil.example/`, { headers: HTML })
    t.equal(res.status, 400, `code=${JSON.stringify(code.slice(0, 20))} refused`)
    t.equal(res.headers.location, undefined)
  }
})

t.test('sign-out goes to the IdP with our fixed return address, or to our page: never to a parameter', async (t) => {
  const evil = 'https://evil.example/'
  const params = ['rd', 'redirect', 'redirect_uri', 'post_logout_redirect_uri', 'return_to', 'returnTo', 'next', 'url', 'state', 'target']
  const query = params.map((p) => `${p}=${encodeURIComponent(evil)}`).join('&')
  const signedIn = new Browser()
  await browserSignIn(signedIn, stack, `${WIKI}/`, 'alice')
  for (const [who, browser] of [['signed in', signedIn], ['anonymous', new Browser()]] as const) {
    for (const origin of [WIKI, stack.origin('chat'), stack.authUrl]) {
      const res = await browser.request(`${origin}/.moatless/sign_out?${query}`, { headers: HTML })
      t.equal(res.status, 302, `${who} at ${origin}`)
      const to = target(res.headers.location, origin)
      t.ok(to !== null && (to.origin === idpOrigin || to.origin === authOrigin), `${who} at ${origin}: to the IdP or the authenticate origin (${to?.origin ?? 'none'})`)
      if (to?.origin === idpOrigin) t.equal(to.searchParams.get('post_logout_redirect_uri'), `${stack.authUrl}/.moatless/signed_out`)
      t.notMatch(String(res.headers.location), /evil/)
    }
  }
  const page = await new Browser().request(`${stack.authUrl}/.moatless/signed_out?${query}`, { headers: HTML })
  t.equal(page.status, 200)
  t.equal(page.headers.location, undefined)
  t.notMatch(page.body, /evil/, 'the signed-out page does not link to a parameter')
})

t.test('the sign-in redirect from an app carries only that app\'s own URL', async (t) => {
  const m = mark(stack)
  for (const path of ['/x?next=https://evil.example/', '/x?rd=https://evil.example/', '/redirect?url=//evil.example']) {
    const res = await new Browser().request(`${WIKI}${path}`, { headers: HTML })
    t.equal(res.status, 302)
    const to = target(res.headers.location, WIKI)
    t.equal(to?.origin, authOrigin)
    t.equal(to?.pathname, '/.moatless/sign_in')
    t.equal(to?.searchParams.get('rd'), `${WIKI}${path}`, 'rd is the app URL that was asked for')
  }
  const doubleSlash = await rawRequest(P, `GET //evil.example/ HTTP/1.1\r\nHost: wiki.localhost:${P}\r\nAccept: text/html\r\nConnection: close\r\n\r\n`)
  t.equal(doubleSlash.status, 400, '//evil.example/ is refused, not turned into rd=//evil.example/')
  t.same(m.since(), [], 'nothing forwarded')
})
