/**
 * API clients through the proxy with `Authorization: Bearer <JWT>` instead of a cookie: real ID
 * tokens and JWT access tokens from the embedded IdP, obtained by a code flow the test runs as
 * the `moatless` client (the flow stops before the callback, so the proxy never sees the code).
 */
import t from 'tap'
import * as client from 'openid-client'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { startIdp, type StartedIdp } from '../../src/demo/idp.js'
import { Browser } from '../helpers/browser.js'
import { signInAtIdp } from '../helpers/idp-login.js'
import { rawRequest } from '../helpers/raw.js'
import { CLIENT_SECRET, HTML, startStack, type Stack } from '../helpers/stack.js'

const RESOURCE = 'https://api.example.test'
const JSONH = { accept: 'application/json' }

/** A code flow as the `moatless` client; returns the ID token and a JWT access token for RESOURCE. */
async function tokensFor (idp: StartedIdp, redirectUri: string, username: string): Promise<{ idToken: string; accessToken: string }> {
  const config = await client.discovery(new URL(idp.issuer), 'moatless', CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] })
  const browser = new Browser()
  try {
    const pkceCodeVerifier = client.randomPKCECodeVerifier()
    const expectedState = client.randomState()
    const expectedNonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: expectedState,
      nonce: expectedNonce,
      resource: RESOURCE
    })
    const idpOrigin = new URL(idp.issuer).origin
    const { final } = await browser.follow(url.href, { headers: { accept: 'text/html' } }, 20, { stopBefore: (next) => next.origin !== idpOrigin })
    const { url: callback } = await signInAtIdp(browser, final.url, username, `${username}-password`)
    const tokens = await client.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier, expectedState, expectedNonce }, { resource: RESOURCE })
    if (tokens.id_token === undefined) throw new Error('no ID token')
    return { idToken: tokens.id_token, accessToken: tokens.access_token }
  } finally {
    await browser.close()
  }
}

const API_APP = {
  identity_headers: true,
  public_paths: ['/public/**'],
  rules: [{ name: 'engineers', allow: { groups: ['engineering'] } }]
}

const stack = await startStack({ apps: { api: API_APP } })
t.teardown(() => stack.close())
const api = new Browser()
t.teardown(() => api.close())
const callbackOf = (s: Stack): string => `${s.authUrl}/.moatless/callback`
const alice = await tokensFor(stack.idp, callbackOf(stack), 'alice')
const bob = await tokensFor(stack.idp, callbackOf(stack), 'bob')
const bearer = (token: string): Record<string, string> => ({ ...JSONH, authorization: `Bearer ${token}` })

t.test('an ID token is accepted instead of a cookie: identity headers and a verified assertion', async (t) => {
  const res = await api.request(`${stack.origin('api')}/v1/items?page=2`, { headers: bearer(alice.idToken) })
  t.equal(res.status, 200)
  const seen = stack.upstream.requests.at(-1)
  t.equal(seen?.url, '/v1/items?page=2')
  t.equal(seen?.headers['x-moatless-user'], 'user-1001')
  t.equal(seen?.headers['x-moatless-email'], 'alice@example.com')
  t.equal(seen?.headers['x-moatless-groups'], 'engineering')
  const jwks = await api.request(`${stack.origin('api')}/.well-known/moatless/jwks.json`)
  const { payload } = await jwtVerify(seen?.headers['x-moatless-jwt-assertion'] as string, createLocalJWKSet(JSON.parse(jwks.body)), {
    issuer: stack.authUrl,
    audience: stack.origin('api'),
    algorithms: ['ES256']
  })
  t.equal(payload.sub, 'user-1001')
  t.equal(payload.email, 'alice@example.com')
  t.same(payload.groups, ['engineering'])
  t.equal(payload.device_trust, 'none')
})

t.test('a JWT access token (typ at+jwt) is accepted; the scheme is case-insensitive', async (t) => {
  const res = await api.request(`${stack.origin('api')}/v1/me`, { headers: { ...JSONH, authorization: `bearer ${alice.accessToken}` } })
  t.equal(res.status, 200)
  t.equal(stack.upstream.requests.at(-1)?.headers['x-moatless-email'], 'alice@example.com')
})

t.test('rules apply to bearer identities: a user outside the group gets 403 JSON', async (t) => {
  const before = stack.upstream.requests.length
  const res = await api.request(`${stack.origin('api')}/v1/items`, { headers: bearer(bob.idToken) })
  t.equal(res.status, 403)
  t.match(JSON.parse(res.body), { error: 'forbidden', rule: 'default-deny', request_id: String })
  t.equal(stack.upstream.requests.length, before, 'nothing forwarded')
})

t.test('an invalid token: 401 invalid_token, browsers included, nothing forwarded', async (t) => {
  const before = stack.upstream.requests.length
  const [h, p] = alice.idToken.split('.') as [string, string]
  const forged = `${h}.${p}.${'A'.repeat(342)}`
  const res = await api.request(`${stack.origin('api')}/v1/items`, { headers: bearer(forged) })
  t.equal(res.status, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  const body = JSON.parse(res.body) as Record<string, unknown>
  t.equal(body.error, 'invalid_token')
  t.type(body.request_id, 'string')

  const nav = await api.request(`${stack.origin('api')}/`, { headers: { ...HTML, authorization: 'Bearer not-a-jwt' } })
  t.equal(nav.status, 401, 'a navigation with a bad token is not sent to sign-in')
  t.equal(JSON.parse(nav.body).error, 'invalid_token')

  const two = await rawRequest(stack.port, `GET /v1/items HTTP/1.1\r\nHost: api.localhost:${stack.port}\r\nAuthorization: Bearer ${alice.idToken}\r\nAuthorization: Bearer ${alice.idToken}\r\nConnection: close\r\n\r\n`)
  t.equal(two.status, 401, 'two Authorization headers are refused, even with a good token')
  t.match(two.body, /invalid_token/)
  t.equal(stack.upstream.requests.length, before, 'nothing forwarded')

  const line = stack.logs.filter((l) => l.msg === 'decision' && l.rule === 'invalid-token').at(0)
  t.match(line, { status: 401, decision: 'unauthenticated', reason: /^invalid-token: bad-signature/ }, 'the decision log says why')
})

t.test('another Authorization scheme is not ours: plain 401 unauthenticated', async (t) => {
  const res = await api.request(`${stack.origin('api')}/v1/items`, { headers: { ...JSONH, authorization: 'Basic dXNlcjpwdw==' } })
  t.equal(res.status, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer')
  t.equal(JSON.parse(res.body).error, 'unauthenticated')
})

t.test('public paths pass with a token that is not ours (it may be meant for the app)', async (t) => {
  const res = await api.request(`${stack.origin('api')}/public/hook`, { headers: bearer('app-own-token') })
  t.equal(res.status, 200)
  t.equal(stack.upstream.requests.at(-1)?.headers['x-moatless-jwt-assertion'], undefined, 'anonymous: no assertion')
})

t.test('no token in any log line', async (t) => {
  const text = stack.logText()
  for (const tok of [alice.idToken, alice.accessToken, bob.idToken]) t.notOk(text.includes(tok.split('.')[2] ?? tok))
  t.notMatch(text, /eyJ[A-Za-z0-9_-]{10,}\./)
})

t.test('IdP keys unreachable (token not yet cached): 503, nothing forwarded', async (t) => {
  const RP_REDIRECT = 'http://app.localhost:1/.moatless/callback'
  const idp = await startIdp({ clients: [{ client_id: 'moatless', client_secret: CLIENT_SECRET, redirect_uris: [RP_REDIRECT] }] })
  let idpOpen = true
  t.teardown(async () => { if (idpOpen) await idp.close() })
  const s = await startStack({ apps: { api: API_APP }, idp })
  t.teardown(() => s.close())
  const { idToken } = await tokensFor(idp, RP_REDIRECT, 'alice')
  t.ok(s.moatless.idp.ready, 'the proxy discovered the IdP')
  await idp.close()
  idpOpen = false
  const before = s.upstream.requests.length
  const res = await api.request(`${s.origin('api')}/v1/items`, { headers: bearer(idToken) })
  t.equal(res.status, 503)
  t.equal(JSON.parse(res.body).error, 'unavailable')
  t.equal(s.upstream.requests.length, before, 'nothing forwarded')
})
