/**
 * End-to-end runs against the demo IdP with openid-client 6 as the relying party, the same
 * library the proxy uses, driven through the sign-in page by Browser + signInAtIdp.
 */
import t from 'tap'
import * as client from 'openid-client'
import { decodeJwt, decodeProtectedHeader } from 'jose'

import { DEMO_USERS, startIdp, type StartedIdp } from '../../src/demo/idp.js'
import { Browser } from '../helpers/browser.js'
import { IdpSignInError, signInAtIdp, signOutAtIdp } from '../helpers/idp-login.js'
import { startUpstream } from '../helpers/upstream.js'

// Nothing listens here: every flow stops at the redirect to it.
const REDIRECT_URI = 'http://app.localhost:1/.moatless/callback'
const POST_LOGOUT_URI = 'http://app.localhost:1/.moatless/signed_out'
const SCOPE = 'openid email profile offline_access'

async function setup(t: { teardown(fn: () => unknown): void }, backchannel_logout_uri?: string) {
  const idp = await startIdp({
    clients: [
      {
        client_id: 'moatless',
        client_secret: 'moatless-secret-moatless-secret-0000',
        redirect_uris: [REDIRECT_URI],
        post_logout_redirect_uris: [POST_LOGOUT_URI],
        ...(backchannel_logout_uri === undefined ? {} : { backchannel_logout_uri }),
      },
    ],
  })
  t.teardown(() => idp.close())
  const config = await client.discovery(new URL(idp.issuer), 'moatless', 'moatless-secret-moatless-secret-0000', undefined, {
    execute: [client.allowInsecureRequests],
  })
  const browser = new Browser()
  t.teardown(() => browser.close())
  return { idp, config, browser }
}

/** Starts an authorization request, returns the IdP page it lands on plus the checks. */
async function beginSignIn(config: client.Configuration, browser: Browser, extra: Record<string, string> = {}) {
  const code_verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  })
  const issuerOrigin = new URL(config.serverMetadata().issuer).origin
  const { final } = await browser.follow(url.href, { headers: { accept: 'text/html' } }, 20, {
    stopBefore: (next) => next.origin !== issuerOrigin,
  })
  return { landing: final, checks: { pkceCodeVerifier: code_verifier, expectedState: state, expectedNonce: nonce } }
}

async function signIn(config: client.Configuration, browser: Browser, username: string, extra: Record<string, string> = {}) {
  const { landing, checks } = await beginSignIn(config, browser, extra)
  const password = DEMO_USERS.find((u) => u.username === username)?.password ?? ''
  const { url } = await signInAtIdp(browser, landing.url, username, password)
  const tokens = await client.authorizationCodeGrant(config, new URL(url), checks)
  return { tokens, callbackUrl: url }
}

t.test('discovery advertises what the proxy relies on', async (t) => {
  const { idp, config } = await setup(t)
  const md = config.serverMetadata()
  t.equal(md.issuer, idp.issuer)
  t.match(idp.issuer, /^http:\/\/localhost:\d+$/)
  t.same(md.code_challenge_methods_supported, ['S256'])
  t.equal(md.authorization_response_iss_parameter_supported, true)
  t.ok(md.end_session_endpoint, 'end_session_endpoint')
  t.equal(md.backchannel_logout_supported, true)
  t.ok(md.jwks_uri)
  t.ok(md.scopes_supported?.includes('offline_access'))
  for (const claim of ['email', 'email_verified', 'name', 'groups']) t.ok(md.claims_supported?.includes(claim), claim)
})

t.test('code flow with PKCE, state, nonce and iss: ID token carries the identity', async (t) => {
  const { idp, config, browser } = await setup(t)
  const { landing } = await beginSignIn(config, browser)
  t.equal(landing.status, 200)
  t.match(landing.url, new RegExp(`^${idp.issuer}/interaction/`))
  t.match(landing.body, /<title>Moatless demo IdP<\/title>/)
  t.match(landing.body, /id="sign-in"/)
  t.match(landing.body, /alice-password/, 'the hint box lists the demo passwords')

  const { tokens, callbackUrl } = await signIn(config, browser, 'alice')
  const cb = new URL(callbackUrl)
  t.equal(cb.origin + cb.pathname, REDIRECT_URI)
  t.equal(cb.searchParams.get('iss'), idp.issuer, 'RFC 9207 iss in the authorization response')

  const claims = tokens.claims()
  t.ok(claims)
  t.equal(claims?.sub, 'user-1001')
  t.equal(claims?.email, 'alice@example.com')
  t.equal(claims?.email_verified, true)
  t.equal(claims?.name, 'Alice Anders')
  t.same(claims?.groups, ['engineering'])
  t.ok(tokens.refresh_token, 'offline_access gives a refresh token')
  t.equal(decodeProtectedHeader(tokens.id_token ?? '').alg, 'RS256')

  const info = await client.fetchUserInfo(config, tokens.access_token, 'user-1001')
  t.same(info.groups, ['engineering'])
})

t.test('PKCE is required', async (t) => {
  const { config, browser } = await setup(t)
  const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: SCOPE, state: 'x' })
  const res = await browser.request(url.href, { headers: { accept: 'text/html' } })
  t.equal(res.status, 303)
  const back = new URL(String(res.headers.location))
  t.equal(back.searchParams.get('error'), 'invalid_request')
  t.match(back.searchParams.get('error_description') ?? '', /PKCE/)
})

t.test('carol: email not verified', async (t) => {
  const { config, browser } = await setup(t)
  const { tokens } = await signIn(config, browser, 'carol')
  t.equal(tokens.claims()?.email_verified, false)
})

t.test('refresh works and sees group changes; disableUser makes it fail', async (t) => {
  const { idp, config, browser } = await setup(t)
  const { tokens } = await signIn(config, browser, 'bob')
  t.same(tokens.claims()?.groups, ['contractors'])

  idp.setUserGroups('bob', ['contractors', 'finance'])
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? '')
  t.same(refreshed.claims()?.groups, ['contractors', 'finance'], 'a refresh sees the new groups')
  t.equal(refreshed.claims()?.sub, 'user-1002')

  idp.disableUser('bob')
  const err = await client.refreshTokenGrant(config, refreshed.refresh_token ?? tokens.refresh_token ?? '').then(
    () => undefined,
    (e: unknown) => e,
  )
  t.type(err, client.ResponseBodyError)
  t.equal((err as client.ResponseBodyError).error, 'invalid_grant')

  // The IdP session is gone too: a new sign-in shows the form, and the account is refused.
  const { landing } = await beginSignIn(config, browser)
  t.match(landing.url, /\/interaction\//)
  await t.rejects(signInAtIdp(browser, landing.url, 'bob', 'bob-password'), { name: 'IdpSignInError', message: /disabled/ })
})

t.test('wrong password shows the form again with an error', async (t) => {
  const { config, browser } = await setup(t)
  const { landing } = await beginSignIn(config, browser)
  const err = await signInAtIdp(browser, landing.url, 'alice', 'not-her-password').catch((e: unknown) => e)
  t.type(err, IdpSignInError)
  const res = (err as IdpSignInError).response
  t.equal(res.status, 200)
  t.match(res.body, /Wrong username or password/)
  t.match(res.body, /id="sign-in"/)
  // The same interaction still accepts the right password.
  const { url } = await signInAtIdp(browser, landing.url, 'alice', 'alice-password')
  t.match(url, /^http:\/\/app\.localhost:1\/\.moatless\/callback\?code=/)
})

t.test('an existing IdP session signs in again without the form', async (t) => {
  const { config, browser } = await setup(t)
  await signIn(config, browser, 'alice')
  const { landing, checks } = await beginSignIn(config, browser)
  t.equal(landing.status, 303, 'straight back to the client')
  const url = String(landing.headers.location)
  t.match(url, /^http:\/\/app\.localhost:1\//)
  const tokens = await client.authorizationCodeGrant(config, new URL(url), checks)
  t.equal(tokens.claims()?.email, 'alice@example.com')
})

t.test('cancel returns access_denied to the client', async (t) => {
  const { config, browser } = await setup(t)
  const { landing, checks } = await beginSignIn(config, browser)
  const res = await browser.request(`${landing.url}/abort`, { method: 'POST', headers: { accept: 'text/html' } })
  t.equal(res.status, 303)
  const { final } = await browser.follow(new URL(String(res.headers.location), landing.url).href, {}, 20, {
    stopBefore: (next) => next.port === '1',
  })
  const back = new URL(String(final.headers.location))
  t.equal(back.searchParams.get('error'), 'access_denied')
  t.equal(back.searchParams.get('state'), checks.expectedState)
})

t.test('RP-initiated logout reaches post_logout_redirect_uri and sends back-channel logout', async (t) => {
  const receiver = await startUpstream()
  t.teardown(() => receiver.close())
  const { config, browser } = await setup(t, `${receiver.url.replace('127.0.0.1', 'rp.localhost')}/backchannel-logout`)
  const { tokens } = await signIn(config, browser, 'alice')

  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token ?? '',
    post_logout_redirect_uri: POST_LOGOUT_URI,
    state: 'after-logout',
  })
  const page = await browser.request(endSession.href, { headers: { accept: 'text/html' } })
  t.equal(page.status, 200)
  t.match(page.body, /op\.logoutForm/)
  t.match(page.body, /\.submit\(\)/, 'the confirmation auto-submits')

  const { url } = await signOutAtIdp(browser, endSession.href)
  t.ok(url)
  const back = new URL(url ?? '')
  t.equal(back.origin + back.pathname, POST_LOGOUT_URI)
  t.equal(back.searchParams.get('state'), 'after-logout')

  const delivery = receiver.requests.find((r) => r.url === '/backchannel-logout')
  t.ok(delivery, 'back-channel logout delivered')
  const logoutToken = new URLSearchParams(delivery?.body ?? '').get('logout_token') ?? ''
  const payload = decodeJwt(logoutToken)
  t.equal(payload.sub, 'user-1001')
  t.equal(payload.iss, config.serverMetadata().issuer)
  t.ok(payload.sid)
  t.equal(payload.sid, tokens.claims()?.sid, 'the ID token carries the sid the logout token names')
  t.ok((payload.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout'])

  // Signed out at the IdP: the next authorization request shows the form again.
  const { landing } = await beginSignIn(config, browser)
  t.match(landing.url, /\/interaction\//)
  t.equal(landing.status, 200)
  // offline_access is what it says: the grant outlives the IdP session (oidc-provider marks it
  // persistsLogout). Ending access is the relying party's job (it drops its refresh token).
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? '')
  t.equal(refreshed.claims()?.sub, 'user-1001')
})

t.test('JWT access token for a resource indicator names the client in aud', async (t) => {
  const { config, browser } = await setup(t)
  const resource = 'https://api.example.test'
  const { landing, checks } = await beginSignIn(config, browser, { resource })
  const { url } = await signInAtIdp(browser, landing.url, 'alice', 'alice-password')
  const tokens = await client.authorizationCodeGrant(config, new URL(url), checks, { resource })
  t.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt')
  const at = decodeJwt(tokens.access_token)
  t.same(at.aud, [resource, 'moatless'])
  t.equal(at.email, 'alice@example.com')
  t.same(at.groups, ['engineering'])
})

t.test('startIdp twice: independent issuers, stores and accounts', async (t) => {
  const one = await setup(t)
  const two: StartedIdp = await startIdp({ clients: [] })
  t.teardown(() => two.close())
  t.not(one.idp.issuer, two.issuer)
  one.idp.disableUser('alice')
  const res = await fetch(`${two.issuer}/.well-known/openid-configuration`)
  t.equal(res.status, 200)
})
