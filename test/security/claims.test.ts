/**
 * Attack family: claim values — an identity whose email or groups are written to look like
 * someone else's, or to break out of the header they travel in.
 *
 * Seen in: "nOAuth" (Descope, 2023: Microsoft Entra's mutable, unverified `email` claim used as
 * the account key), email parser differentials (`alice@example.com@evil.com`, PortSwigger
 * "Splitting the email atom", 2024), domain suffix checks fooled by `evil-example.com` or
 * `example.com.evil.com`, Unicode homoglyphs and case folding in identifiers (GitHub's 2019
 * password-reset dotless-i bug), and CRLF injection into headers built from user data
 * (CWE-113; CVE-2019-9740 in Python's urllib).
 *
 * Moatless: `domains` takes the exact part after the single `@` of a verified email,
 * case-insensitively (src/authz/criteria/domains.ts). Identity headers (src/proxy/headers.ts)
 * carry a value only when it is printable ASCII, exactly as the IdP wrote it — never a
 * "cleaned" value that could name someone else — and X-Moatless-Email only when the IdP says
 * the email is verified; the signed assertion carries every value exactly.
 */
import t from 'tap'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { startIdp, DEMO_USERS, type DemoUser } from '../../src/demo/idp.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/ports.js'
import { startStack, browserSignIn, CLIENT_SECRET } from '../helpers/stack.js'
import { mark } from './helpers.js'

const user = (username: string, email: string, extra: Partial<DemoUser> = {}): DemoUser => ({
  username, password: `${username}-password`, sub: `sub-${username}`, email, email_verified: true, name: username, groups: ['staff'], ...extra
})
const USERS: DemoUser[] = [
  ...DEMO_USERS,
  user('twoat', 'alice@example.com@evil.com'),
  user('quoted', '"alice@example.com"@evil.com'),
  user('subdomain', 'alice@evil.example.com'),
  user('hyphen', 'alice@evil-example.com'),
  user('suffix', 'alice@example.com.evil.com'),
  user('trailingdot', 'alice@example.com.'),
  user('upper', 'ALICE@EXAMPLE.COM'),
  user('homoglyph', 'alice@ex\u0430mple.com'), // Cyrillic а
  user('fullwidth', 'alice@\uff45xample.com'),
  user('empty', ''),
  user('unverified', 'alice@example.com', { email_verified: false }),
  user('stringverified', 'alice@example.com', { email_verified: 'true' as unknown as boolean }),
  user('nulemail', 'root@example.com\u0000'),
  user('crlfgroups', 'crlf@example.com', { groups: ['eng\r\nX-Moatless-User: root', 'admins\u0000', 'admins\r', 'a,b', 'staff'] }),
  user('crlfsub', 'crlfsub@example.com', { sub: 'sub-x\r\nX-Injected: 1' }),
  user('cjk', '\u7528\u6237@example.com', { groups: ['\u30a8\u30f3\u30b8\u30cb\u30a2', 'staff'] })
]

const port = await freePort()
const authUrl = `http://auth.localhost:${port}`
const idp = await startIdp({ clients: [{ client_id: 'moatless', client_secret: CLIENT_SECRET, redirect_uris: [`${authUrl}/.moatless/callback`] }], users: USERS })
const stack = await startStack({
  port,
  idp,
  apps: {
    staff: { identity_headers: true, rules: [{ name: 'example-staff', allow: { domains: ['example.com'] } }] },
    any: { identity_headers: true, rules: [{ name: 'anyone-signed-in', allow: { authenticated: true } }] }
  }
})
t.teardown(async () => { await stack.close(); await idp.close() })

/** Signs `username` in at `app`; the final status and what the upstream saw. */
async function visit (app: string, username: string): Promise<{ status: number; headers: Record<string, unknown>; raw: string[] }> {
  const m = mark(stack)
  const { final } = await browserSignIn(new Browser(), stack, `${stack.origin(app)}/`, username)
  const seen = m.since().at(-1)
  return { status: final.status, headers: seen?.headers ?? {}, raw: seen?.rawHeaders ?? [] }
}

t.test('domains: only the exact, verified domain after the single @', async (t) => {
  t.equal((await visit('staff', 'alice')).status, 200, 'control: alice@example.com')
  const upper = await visit('staff', 'upper')
  t.equal(upper.status, 200, 'case-insensitive: ALICE@EXAMPLE.COM')
  t.equal(upper.headers['x-moatless-email'], 'ALICE@EXAMPLE.COM', 'sent as the IdP wrote it')
  for (const u of ['twoat', 'quoted', 'subdomain', 'hyphen', 'suffix', 'trailingdot', 'homoglyph', 'fullwidth', 'empty', 'unverified', 'stringverified', 'nulemail', 'carol']) {
    const res = await visit('staff', u)
    t.equal(res.status, 403, `${u} (${JSON.stringify(USERS.find((x) => x.username === u)?.email)}) is not in example.com`)
  }
})

t.test('regression: an unverified email never travels as X-Moatless-Email', async (t) => {
  for (const u of ['unverified', 'stringverified', 'carol']) {
    const res = await visit('any', u)
    t.equal(res.status, 200, `${u} may use the app (authenticated: true)`)
    t.equal(res.headers['x-moatless-email'], undefined, `${u}: no X-Moatless-Email (the IdP does not vouch for it)`)
    t.match(res.headers['x-moatless-user'], /^sub-|^user-/, `${u}: X-Moatless-User is the subject`)
  }
})

t.test('regression: control characters in claims are never "cleaned" into another identity', async (t) => {
  const nul = await visit('any', 'nulemail')
  t.equal(nul.status, 200)
  t.equal(nul.headers['x-moatless-email'], undefined, 'root@example.com\\0 is not sent as root@example.com')

  const groups = await visit('any', 'crlfgroups')
  t.equal(groups.status, 200)
  t.equal(groups.headers['x-moatless-groups'], 'staff', 'only the groups that travel exactly: no "admins" made from "admins\\0" or "admins\\r"')
  t.equal(groups.headers['x-moatless-user'], 'sub-crlfgroups', 'no injected X-Moatless-User')
  t.equal(groups.raw.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'x-moatless-user').length, 1)

  const sub = await visit('any', 'crlfsub')
  t.equal(sub.status, 200)
  t.equal(sub.headers['x-moatless-user'], undefined, 'a subject with CR/LF is not sent (and not sent shortened)')
  t.equal(sub.headers['x-injected'], undefined, 'no header injected')
})

t.test('regression: claims outside Latin-1 gave 502 on every request', async (t) => {
  const res = await visit('any', 'cjk')
  t.equal(res.status, 200, 'not a 502 (undici refuses header values above U+00FF)')
  t.equal(res.headers['x-moatless-email'], undefined, 'the non-ASCII email is left out')
  t.equal(res.headers['x-moatless-groups'], 'staff', 'the non-ASCII group is left out, the others kept')
  const homoglyph = await visit('any', 'homoglyph')
  t.equal(homoglyph.status, 200)
  t.equal(homoglyph.headers['x-moatless-email'], undefined, 'a homoglyph email is not sent at all')
})

t.test('the signed assertion carries every claim exactly', async (t) => {
  const jwks = createLocalJWKSet(JSON.parse((await new Browser().request(`${stack.origin('any')}/.well-known/moatless/jwks.json`)).body))
  for (const u of ['crlfgroups', 'cjk', 'crlfsub']) {
    const res = await visit('any', u)
    const { payload } = await jwtVerify(String(res.headers['x-moatless-jwt-assertion']), jwks, { issuer: authUrl, audience: stack.origin('any'), algorithms: ['ES256'] })
    const want = USERS.find((x) => x.username === u) as DemoUser
    t.equal(payload.sub, want.sub, `${u}: sub exact`)
    t.same(payload.groups, want.groups, `${u}: groups exact`)
  }
})
