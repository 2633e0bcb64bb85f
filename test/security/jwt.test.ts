/**
 * Attack family: JWTs — forged, confused or replayed tokens on every JWT Moatless accepts or
 * issues.
 *
 * Seen in: `alg: none` and RS256→HS256 key confusion (Tim McLean, "Critical vulnerabilities in
 * JSON Web Token libraries", 2015; CVE-2015-9235 in node-jsonwebtoken, CVE-2016-10555), embedded
 * `jwk` / `jku` / `x5u` keys (CVE-2018-0114), tokens of one kind accepted as another (OpenID
 * Back-Channel Logout 1.0 §2.6 requires `events` and forbids `nonce` for exactly that reason),
 * replayed logout tokens (§2.6: "jti ... MAY be used to prevent replay"), and private key
 * material leaking through a published JWKS (misconfigured `jwks.json` exports with `d`).
 *
 * Bearer tokens (ID tokens and RFC 9068 access tokens in `Authorization`) are attacked in depth
 * in test/authn/bearer.test.ts (alg none, HS256 keyed with the public key, foreign and embedded
 * keys, jku/x5u, expiry, nbf/iat, audience, azp, issuer, logout token as bearer, garbage) and
 * test/integration/bearer.test.ts; device tokens and posture reports in test/device-trust/. This
 * file covers the others: our own assertion and its JWKS (src/proxy/assertion.ts), and
 * back-channel logout tokens (src/authn/backchannel.ts).
 */
import t from 'tap'
import { createHmac } from 'node:crypto'
import { SignJWT, createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose'
import { startIdp } from '../../src/demo/idp.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/ports.js'
import { rawRequest } from '../helpers/raw.js'
import { startStack, browserSignIn, CLIENT_SECRET } from '../helpers/stack.js'
import { JSONH, mark, noCrash } from './helpers.js'

const port = await freePort()
const authUrl = `http://auth.localhost:${port}`
const idp = await startIdp({
  clients: [
    { client_id: 'moatless', client_secret: CLIENT_SECRET, redirect_uris: [`${authUrl}/.moatless/callback`] },
    { client_id: 'other-app', client_secret: CLIENT_SECRET, redirect_uris: ['http://other.localhost:1/cb'] }
  ]
})
const stack = await startStack({
  port,
  idp,
  apps: {
    wiki: { identity_headers: true, public_paths: ['/public/**'], rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] },
    chat: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] }
  }
})
t.teardown(async () => { await stack.close(); await idp.close() })
const WIKI = stack.origin('wiki')

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

t.test('the assertion JWKS serves public keys only, on app and authenticate origins only', async (t) => {
  for (const origin of [WIKI, stack.origin('chat'), authUrl]) {
    const res = await new Browser().request(`${origin}/.well-known/moatless/jwks.json`)
    t.equal(res.status, 200, origin)
    const { keys } = JSON.parse(res.body) as { keys: JWK[] }
    t.ok(keys.length >= 1)
    for (const k of keys) {
      for (const m of PRIVATE_MEMBERS) t.notOk(m in k, `${origin}: no "${m}" in the published key`)
      t.match(k, { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: String })
    }
  }
  const other = await rawRequest(port, `GET /.well-known/moatless/jwks.json HTTP/1.1\r\nHost: unknown.localhost:${port}\r\nConnection: close\r\n\r\n`)
  t.equal(other.status, 404, 'not on hosts Moatless does not serve')
  t.notMatch(other.body, /"kty"/)
})

t.test('the assertion: ES256, our issuer, the app\'s exact audience, at most five minutes', async (t) => {
  const b = new Browser()
  await browserSignIn(b, stack, `${WIKI}/`, 'alice')
  const m = mark(stack)
  await b.request(`${WIKI}/x`, { headers: JSONH })
  const jwt = String(m.since()[0]?.headers['x-moatless-jwt-assertion'])
  const jwks = createLocalJWKSet(JSON.parse((await b.request(`${WIKI}/.well-known/moatless/jwks.json`)).body))
  t.equal(decodeProtectedHeader(jwt).alg, 'ES256')
  const { payload } = await jwtVerify(jwt, jwks, { issuer: authUrl, audience: WIKI, algorithms: ['ES256'] })
  t.ok((payload.exp as number) - (payload.iat as number) <= 300, 'lifetime <= 300 s')
  t.equal(payload.sub, 'user-1001')
  await t.rejects(jwtVerify(jwt, jwks, { issuer: authUrl, audience: stack.origin('chat'), algorithms: ['ES256'] }), 'not valid for another app')
  await t.rejects(jwtVerify(jwt, jwks, { issuer: authUrl, audience: WIKI, algorithms: ['RS256', 'HS256'] }), 'not under another algorithm')
})

t.test('a client-made assertion never reaches the upstream, signed in or not', async (t) => {
  const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"sub":"root","aud":"${WIKI}"}`).toString('base64url')}.`
  const m = mark(stack)
  await new Browser().request(`${WIKI}/public/x`, { headers: { 'x-moatless-jwt-assertion': forged } })
  t.equal(m.since()[0]?.headers['x-moatless-jwt-assertion'], undefined, 'anonymous on a public path: none at all')
})

// ---------------------------------------------------------------------------------------------
// Back-channel logout tokens, minted with the IdP's own key through oidc-provider's models.

interface IdTokenModel { mask?: Record<string, unknown>; set (claim: string, value: unknown): void; issue (opts: { use: string }): Promise<string> }
interface ProviderModels {
  Client: { find (id: string): Promise<object | undefined> }
  IdToken: new (claims: Record<string, unknown>, opts: { client: object; ctx?: unknown }) => IdTokenModel
}
const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

async function mint (opts: { client?: string; sub?: string | null; events?: unknown; jti?: string | null; nonce?: string; use?: 'logout' | 'idtoken' } = {}): Promise<string> {
  const provider = idp.provider as ProviderModels
  const client = await provider.Client.find(opts.client ?? 'moatless')
  if (client === undefined) throw new Error('no client')
  const token = new provider.IdToken({ sub: opts.sub ?? 'user-1001' }, { client, ctx: undefined })
  // As oidc-provider's own back-channel logout does: without the mask, `sub` is left out.
  if (opts.sub !== null) token.mask = { sub: null }
  if (opts.events !== null) token.set('events', opts.events ?? { [LOGOUT_EVENT]: {} })
  if (opts.jti !== null) token.set('jti', opts.jti ?? `jti-${Math.random().toString(36).slice(2)}`)
  if (opts.nonce !== undefined) token.set('nonce', opts.nonce)
  return await token.issue({ use: opts.use ?? 'logout' })
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
const nowS = (): number => Math.floor(Date.now() / 1000)
const goodClaims = (): Record<string, unknown> => ({ iss: idp.issuer, aud: 'moatless', sub: 'user-1001', iat: nowS(), jti: `j${nowS()}${Math.random()}`, events: { [LOGOUT_EVENT]: {} } })

async function postLogout (token: string, origin = authUrl, type = 'application/x-www-form-urlencoded'): Promise<{ status: number; body: string }> {
  const body = type === 'application/json' ? JSON.stringify({ logout_token: token }) : `logout_token=${encodeURIComponent(token)}`
  const res = await new Browser().request(`${origin}/.moatless/backchannel_logout`, { method: 'POST', headers: { 'content-type': type }, body })
  return { status: res.status, body: res.body }
}

t.test('back-channel logout: forged and confused tokens end nothing; a genuine one ends the session once', async (t) => {
  const alice = new Browser()
  await browserSignIn(alice, stack, `${WIKI}/`, 'alice')
  const stillIn = async (): Promise<boolean> => (await alice.request(`${WIKI}/`, { headers: JSONH })).status === 200
  t.ok(await stillIn(), 'alice is signed in')

  const idpKey = (await (await fetch(`${idp.issuer}/jwks`)).json() as { keys: JWK[] }).keys[0] as JWK
  const attacker = await generateKeyPair('RS256')
  const hs256 = (claims: Record<string, unknown>): string => {
    // HS256 keyed with the IdP's public key as published: the classic alg confusion.
    const input = `${b64({ alg: 'HS256', kid: idpKey.kid, typ: 'logout+jwt' })}.${b64(claims)}`
    return `${input}.${createHmac('sha256', JSON.stringify(idpKey)).update(input).digest('base64url')}`
  }
  const forged: [string, string][] = [
    ['alg none', `${b64({ alg: 'none', typ: 'logout+jwt' })}.${b64(goodClaims())}.`],
    ['HS256 keyed with the IdP public key', hs256(goodClaims())],
    ['signed by a foreign key under the IdP kid', await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', kid: idpKey.kid, typ: 'logout+jwt' }).sign(attacker.privateKey)],
    ['embedded jwk header', await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', jwk: await exportJWK(attacker.publicKey), typ: 'logout+jwt' }).sign(attacker.privateKey)],
    ['wrong audience (another client of the IdP)', await mint({ client: 'other-app' })],
    ['no events claim', await mint({ events: null })],
    ['events without the logout event', await mint({ events: { 'http://schemas.openid.net/event/other': {} } })],
    ['events not an object', await mint({ events: 'logout' })],
    ['no jti', await mint({ jti: null })],
    ['neither sub nor sid', await mint({ sub: null })],
    ['a nonce (an ID token in disguise)', await mint({ nonce: 'n-1' })],
    ['an ID token', await mint({ use: 'idtoken', events: null, jti: null })],
    ['garbage', 'a.b.c'],
    ['too large', 'a'.repeat(9000)]
  ]
  for (const [name, token] of forged) {
    const res = await postLogout(token)
    t.equal(res.status, 400, `${name}: 400`)
    noCrash(t, res, name)
  }
  t.equal((await postLogout('', authUrl, 'application/json')).status, 400, 'a JSON body is not a logout request')
  t.equal((await postLogout(await mint(), WIKI)).status, 404, 'not served on an app origin')
  t.ok(await stillIn(), 'after all that, alice is still signed in')

  const genuine = await mint()
  t.equal((await postLogout(genuine)).status, 200, 'a genuine logout token is accepted')
  t.notOk(await stillIn(), 'and ends alice\'s session')

  const again = new Browser()
  await browserSignIn(again, stack, `${WIKI}/`, 'alice')
  const replay = await postLogout(genuine)
  t.equal(replay.status, 400, 'the same token again: replayed jti refused')
  t.match(replay.body, /replayed/)
  t.equal((await again.request(`${WIKI}/`, { headers: JSONH })).status, 200, 'the new session survives the replay')
})
