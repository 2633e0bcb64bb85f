/**
 * BearerVerifier against the real embedded IdP (oidc-provider) through a real `Idp`: genuine ID
 * and access tokens from a code flow, tokens with bad claims minted with the IdP's own signing
 * key (through oidc-provider's IdToken model), and attack tokens forged with jose.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import * as client from 'openid-client'
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, importJWK, importPKCS8, type JWK } from 'jose'

import { BearerVerifier, bearerCredential, tokenKind } from '../../src/authn/bearer.js'
import { Idp } from '../../src/authn/oidc.js'
import { startIdp, type StartedIdp } from '../../src/demo/idp.js'
import { Browser } from '../helpers/browser.js'
import { signInAtIdp } from '../helpers/idp-login.js'
import { freePort } from '../helpers/ports.js'

const SECRET = 'bearer-test-secret-0123456789abcdef'
const REDIRECT_URI = 'http://app.localhost:1/.moatless/callback'
const RESOURCE = 'https://api.example.test'
const quiet = { warn () {}, info () {} }

const idp = await startIdp({
  clients: [
    { client_id: 'moatless', client_secret: SECRET, redirect_uris: [REDIRECT_URI] },
    { client_id: 'other-app', client_secret: SECRET, redirect_uris: [REDIRECT_URI] }
  ]
})
t.teardown(() => idp.close())

function relyingParty (issuer: string, clientId = 'moatless'): Idp {
  const rp = new Idp({ issuer, client_id: clientId, client_secret: SECRET, scopes: ['openid', 'email', 'profile'], groups_claim: 'groups' }, 'http://auth.localhost:1', quiet)
  t.teardown(() => rp.close())
  return rp
}

const rp = relyingParty(idp.issuer)
await rp.get()
const verifier = new BearerVerifier(rp, 'groups')

/** A code flow as the `moatless` client, asking for a JWT access token for RESOURCE too. */
async function signIn (username: string): Promise<{ idToken: string; accessToken: string }> {
  const config = await client.discovery(new URL(idp.issuer), 'moatless', SECRET, undefined, { execute: [client.allowInsecureRequests] })
  const browser = new Browser()
  try {
    const pkceCodeVerifier = client.randomPKCECodeVerifier()
    const expectedState = client.randomState()
    const expectedNonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: expectedState,
      nonce: expectedNonce,
      resource: RESOURCE
    })
    const { final } = await browser.follow(url.href, { headers: { accept: 'text/html' } }, 20, { stopBefore: (next) => next.origin !== new URL(idp.issuer).origin })
    const { url: callback } = await signInAtIdp(browser, final.url, username, `${username}-password`)
    const tokens = await client.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier, expectedState, expectedNonce }, { resource: RESOURCE })
    if (tokens.id_token === undefined) throw new Error('no ID token')
    return { idToken: tokens.id_token, accessToken: tokens.access_token }
  } finally {
    await browser.close()
  }
}

// The slice of oidc-provider's model API used to mint tokens with the IdP's own key.
interface IdTokenModel { scope?: string; set (claim: string, value: unknown): void; issue (opts: { use: string; expiresAt?: number }): Promise<string> }
interface ProviderModels {
  Client: { find (id: string): Promise<object | undefined> }
  IdToken: new (claims: Record<string, unknown>, opts: { client: object }) => IdTokenModel
}

const ALICE = { sub: 'user-1001', email: 'alice@example.com', email_verified: true, groups: ['engineering'] }

/** A JWT signed by `from`'s real signing key, through oidc-provider's own IdToken model. */
async function mint (from: StartedIdp, opts: { use?: 'idtoken' | 'logout' | 'userinfo'; clientId?: string; extra?: Record<string, unknown>; expiresAt?: number } = {}): Promise<string> {
  const provider = from.provider as ProviderModels
  let c = await provider.Client.find(opts.clientId ?? 'moatless')
  if (c === undefined) throw new Error('no such client')
  // Signed UserInfo responses are not enabled for the client; pretend they are.
  if (opts.use === 'userinfo') c = Object.create(c, { userinfoSignedResponseAlg: { value: 'RS256' } }) as object
  const token = new provider.IdToken({ ...ALICE }, { client: c })
  token.scope = 'openid email profile'
  for (const [k, v] of Object.entries(opts.extra ?? {})) token.set(k, v)
  return await token.issue({ use: opts.use ?? 'idtoken', ...(opts.expiresAt === undefined ? {} : { expiresAt: opts.expiresAt }) })
}

const nowS = (): number => Math.floor(Date.now() / 1000)
const goodClaims = (): Record<string, unknown> => ({ ...ALICE, iss: idp.issuer, aud: 'moatless', iat: nowS(), exp: nowS() + 600 })
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

const idpJwks = await (await fetch(`${idp.issuer}/jwks`)).json() as { keys: JWK[] }
const idpKey = idpJwks.keys[0] as JWK
const attacker = await generateKeyPair('RS256', { extractable: true })
const attackerJwk = { ...(await exportJWK(attacker.publicKey)), kid: 'attacker-1', alg: 'RS256', use: 'sig' }

/** A server an attacker controls; it records whether anything fetched from it. */
async function attackerServer (t: { teardown (fn: () => unknown): void }): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = []
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '')
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [attackerJwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits }
}

const tokens = await signIn('alice')

t.test('genuine tokens', async (t) => {
  t.test('an ID token from the code flow identifies its user', async (t) => {
    const r = await verifier.verify(tokens.idToken)
    t.same(r.status === 'ok' && { ...r.identity, claims: undefined }, { sub: 'user-1001', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: undefined, via: 'bearer' })
    t.equal(r.status === 'ok' && r.identity.claims.name, 'Alice Anders', 'all claims kept for claims: criteria')
    t.equal(r.status === 'ok' && r.identity.claims.nonce, undefined, 'the sign-in nonce is not a claim about the user')
  })

  t.test('a JWT access token (typ at+jwt, aud [resource, client_id]) identifies its user', async (t) => {
    const r = await verifier.verify(tokens.accessToken)
    t.same(r.status === 'ok' && [r.identity.sub, r.identity.email, r.identity.groups], ['user-1001', 'alice@example.com', ['engineering']])
  })

  t.test('a groups claim holding a single string is one group', async (t) => {
    const r = await new BearerVerifier(rp, 'email').verify(tokens.idToken)
    t.same(r.status === 'ok' && r.identity.groups, ['alice@example.com'])
  })

  t.test('a verified token is trusted again for up to 60 s without crypto, then verified afresh', async (t) => {
    const counting = relyingParty(idp.issuer)
    let keyLookups = 0
    const jwks = counting.jwks.bind(counting)
    counting.jwks = async () => { keyLookups++; return await jwks() }
    let clock = Date.now()
    const v = new BearerVerifier(counting, 'groups', { now: () => clock })
    await v.verify(tokens.idToken)
    await v.verify(tokens.idToken)
    t.equal(keyLookups, 1, 'the second call was a cache hit')
    clock += 61_000
    t.equal((await v.verify(tokens.idToken)).status, 'ok')
    t.equal(keyLookups, 2, 'verified again after 60 s')
  })

  t.test('a cached token is not trusted past its own exp', async (t) => {
    let clock = Date.now()
    const v = new BearerVerifier(rp, 'groups', { now: () => clock })
    const shortLived = await mint(idp, { expiresAt: nowS() + 20 })
    t.equal((await v.verify(shortLived)).status, 'ok')
    clock += 51_000 // exp + the 30 s tolerance is behind us, the 60 s cache cap is not
    t.match(await v.verify(shortLived), { status: 'invalid', reason: /^expired/ })
  })

  t.test('a failure is not cached', async (t) => {
    let clock = Date.now() + 2 * 3600_000
    const v = new BearerVerifier(rp, 'groups', { now: () => clock })
    t.match(await v.verify(tokens.idToken), { status: 'invalid', reason: /^expired/ })
    clock = Date.now()
    t.equal((await v.verify(tokens.idToken)).status, 'ok')
  })
})

t.test('attacks: each token is invalid', async (t) => {
  t.test('alg none', async (t) => {
    // The unsecured JWT: `alg: none` and an empty signature, hoping the verifier takes the
    // header's word for it (CVE-2015-9235 and many since).
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(goodClaims())}.`
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^alg-not-allowed/ })
  })

  t.test('alg confusion: HS256 keyed with the IdP public key', async (t) => {
    // The attacker switches alg to HS256 and uses the IdP's public key (PEM bytes, which
    // anyone can fetch) as the HMAC secret; a verifier that lets the header pick the
    // algorithm checks the MAC with that same public key and accepts (CVE-2016-10555).
    const pem = await exportSPKI(await importJWK(idpKey, 'RS256', { extractable: true }) as CryptoKey)
    const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'HS256', kid: idpKey.kid }).sign(new TextEncoder().encode(pem))
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^alg-not-allowed/ })
  })

  t.test('foreign key claiming the IdP kid', async (t) => {
    // A token signed with the attacker's own RSA key, naming the IdP's key id.
    const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', kid: idpKey.kid }).sign(attacker.privateKey)
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^bad-signature/ })
  })

  t.test('foreign key with an unknown kid', async (t) => {
    // Same, with a kid the IdP never published: the JWKS is (re)fetched from the IdP only.
    const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', kid: 'attacker-1' }).sign(attacker.privateKey)
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^unknown-key/ })
  })

  t.test('embedded jwk header', async (t) => {
    // The token carries the attacker's public key in its `jwk` header and is signed with the
    // matching private key: a verifier that uses the embedded key verifies the attacker's
    // signature with the attacker's key (CVE-2018-0114).
    const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', jwk: attackerJwk }).sign(attacker.privateKey)
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^bad-signature/ })
  })

  t.test('jku and x5u pointing to the attacker', async (t) => {
    // The header points at a key set (jku) or certificate (x5u) on the attacker's server; a
    // verifier that follows it fetches the attacker's key (and makes a request of the
    // attacker's choosing: SSRF).
    const evil = await attackerServer(t)
    const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', kid: 'attacker-1', jku: `${evil.url}/jwks.json`, x5u: `${evil.url}/cert.pem` }).sign(attacker.privateKey)
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^unknown-key/ })
    t.same(evil.hits, [], 'nothing was fetched from the attacker')
  })

  t.test('embedded x5c certificate', async (t) => {
    // The header carries a self-signed certificate for the attacker's key (x5c) and the
    // token is signed with it; a verifier that trusts the chain's leaf key accepts it.
    const dir = await mkdtemp(join(tmpdir(), 'moatless-x5c-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=attacker', '-days', '1'])
    const cert = new X509Certificate(await readFile(join(dir, 'c.pem')))
    const key = await importPKCS8(await readFile(join(dir, 'k.pem'), 'utf8'), 'RS256')
    const token = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', x5c: [cert.raw.toString('base64')] }).sign(key)
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^bad-signature/ })
  })

  t.test('tampered payload', async (t) => {
    // A genuine ID token with its claims edited (another user, more groups) and the IdP's
    // signature kept.
    const [h, p, s] = tokens.idToken.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
    const token = `${h}.${b64({ ...claims, sub: 'user-1002', groups: ['admins'] })}.${s}`
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^bad-signature/ })
  })

  t.test('expired ID token replayed', async (t) => {
    // A genuine ID token presented after it expired (clock 2 h on; its lifetime is 1 h).
    const later = new BearerVerifier(rp, 'groups', { now: () => Date.now() + 2 * 3600_000 })
    t.match(await later.verify(tokens.idToken), { status: 'invalid', reason: /^expired/ })
  })

  t.test('token without exp: a signed UserInfo response', async (t) => {
    // The IdP also signs UserInfo responses for the client: same iss, aud and sub, no typ,
    // but no exp. Accepted as a bearer, it would be a credential that never expires.
    const token = await mint(idp, { use: 'userinfo' })
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^missing-claim/ })
  })

  t.test('nbf in the future', async (t) => {
    // A token, genuinely signed, that is not valid yet (issued ahead of time, e.g. leaked
    // from a pre-issuing system): using it now must fail.
    const token = await mint(idp, { extra: { nbf: nowS() + 3600 } })
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^not-yet-valid/ })
  })

  t.test('iat in the future', async (t) => {
    // A token claiming to be issued an hour from now: a skewed or compromised issuer's
    // token that would outlive its intended lifetime.
    const token = await mint(idp, { extra: { iat: nowS() + 3600 }, expiresAt: nowS() + 7200 })
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^not-yet-valid/ })
  })

  t.test('wrong audience: an ID token issued to another client of the same IdP', async (t) => {
    // Any app using the same IdP gets ID tokens signed with the same key; one of its tokens
    // (or a token a malicious app obtained for its user) must not open our apps.
    const token = await mint(idp, { clientId: 'other-app' })
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^wrong-audience/ })
  })

  t.test('wrong issuer: another tenant sharing the signing keys', async (t) => {
    // Multi-tenant IdPs sign every tenant's tokens with one key set. A token from tenant A,
    // presented to a proxy configured for tenant B, carries a valid signature: only iss
    // tells them apart. Here tenant B's discovery document points at the IdP's JWKS.
    const tenant = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        issuer: tenantIssuer,
        jwks_uri: `${idp.issuer}/jwks`,
        authorization_endpoint: `${tenantIssuer}/auth`,
        token_endpoint: `${tenantIssuer}/token`,
        id_token_signing_alg_values_supported: ['RS256']
      }))
    })
    await new Promise<void>((resolve) => tenant.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => tenant.close(() => resolve())))
    const tenantIssuer = `http://localhost:${(tenant.address() as AddressInfo).port}`
    const tenantB = new BearerVerifier(relyingParty(tenantIssuer), 'groups')
    t.match(await tenantB.verify(tokens.idToken), { status: 'invalid', reason: /^wrong-issuer/ })
  })

  t.test('token from another IdP', async (t) => {
    // A genuine ID token for a client with the same id at a different IdP.
    const other = await startIdp({ clients: [{ client_id: 'moatless', client_secret: SECRET, redirect_uris: [REDIRECT_URI] }] })
    t.teardown(() => other.close())
    t.match(await verifier.verify(await mint(other)), { status: 'invalid', reason: /^unknown-key/ })
  })

  t.test('logout token replayed as a bearer', async (t) => {
    // Back-channel logout tokens are signed by the IdP for our client_id, with sub, iat and
    // exp: everything an ID token has but the type (typ logout+jwt). Whoever sees one (it is
    // POSTed to a logout endpoint) must not sign in with it.
    const token = await mint(idp, { use: 'logout' })
    t.match(await verifier.verify(token), { status: 'invalid', reason: /^wrong-type/ })
  })

  t.test('garbage', async (t) => {
    // Whatever a fuzzer sends: not three base64url JSON parts.
    for (const token of ['x', 'a.b.c', `${b64({ alg: 'RS256' })}.e30.`, 'eyJ.eyJ.eyJ.eyJ.eyJ']) {
      t.match(await verifier.verify(token), { status: 'invalid' }, token)
    }
  })
})

t.test('the IdP cannot be asked: unavailable, never a guess', async (t) => {
  t.test('JWKS unreachable after discovery', async (t) => {
    const gone = await startIdp({ clients: [{ client_id: 'moatless', client_secret: SECRET, redirect_uris: [REDIRECT_URI] }] })
    const goneRp = relyingParty(gone.issuer)
    await goneRp.get()
    const token = await mint(gone)
    await gone.close()
    t.same(await new BearerVerifier(goneRp, 'groups').verify(token), { status: 'unavailable' })
  })

  t.test('IdP never discovered', async (t) => {
    const nowhere = relyingParty(`http://localhost:${await freePort()}`)
    t.same(await new BearerVerifier(nowhere, 'groups').verify(tokens.idToken), { status: 'unavailable' })
  })
})

t.test('tokenKind: ID token or RFC 9068 access token, by header typ', async (t) => {
  for (const typ of [undefined, 'JWT', 'jwt', 'application/jwt']) t.equal(tokenKind(typ), 'id', String(typ))
  for (const typ of ['at+jwt', 'AT+JWT', 'application/at+jwt']) t.equal(tokenKind(typ), 'access', typ)
  for (const typ of ['logout+jwt', 'dpop+jwt', 'token-introspection+jwt', 'application/jwt+at', 7, null]) t.equal(tokenKind(typ), null, String(typ))
})

t.test('bearerCredential: reading the Authorization header', async (t) => {
  t.same(bearerCredential(['Host', 'x']), { kind: 'none' }, 'no header')
  t.same(bearerCredential(['authorization', 'bEaReR a.b.c']), { kind: 'token', token: 'a.b.c' }, 'scheme is case-insensitive')
  t.same(bearerCredential(['Authorization', 'Basic dXNlcjpwdw==']), { kind: 'none' }, 'another scheme is not ours')
  t.match(bearerCredential(['Authorization', 'Bearer']), { kind: 'invalid' }, 'no token')
  t.match(bearerCredential(['Authorization', 'Bearer a.b c']), { kind: 'invalid' }, 'two tokens')
  t.match(bearerCredential(['Authorization', 'Bearer a.b.c', 'AUTHORIZATION', 'Bearer d.e.f']), { kind: 'invalid' }, 'two Authorization headers')
})
