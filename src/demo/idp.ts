/**
 * The embedded OIDC provider of `moatless demo`, also the IdP every test signs in against.
 *
 * It is oidc-provider (a certified OpenID Provider) with demo accounts, its own sign-in page and
 * automatic consent. oidc-provider is a devDependency: it is loaded on demand so that `serve`
 * never needs it, and a missing install is reported in plain words.
 *
 * What it offers: authorization code flow with PKCE (S256, required), state, nonce, the RFC 9207
 * `iss` authorization response parameter, discovery, ID tokens carrying
 * sub/email/email_verified/name/groups (scopes `openid email profile`), refresh tokens for
 * `offline_access`, RP-initiated logout without a confirmation click, back-channel logout,
 * userinfo, token revocation, and JWT access tokens (`typ: at+jwt`) for any resource indicator.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

import { exportJWK, generateKeyPair } from 'jose'
import { Agent, fetch as undiciFetch } from 'undici'

import { loopbackLookup } from '../device-trust/agent/report.js'
import { IdpStore } from './idp-store.js'
import { errorPage, loginPage, logoutPage, signedOutPage } from './idp-pages.js'

export interface DemoUser {
  username: string
  password: string
  sub: string
  email: string
  email_verified: boolean
  name: string
  groups: string[]
}

export const DEMO_USERS: DemoUser[] = [
  {
    username: 'alice',
    password: 'alice-password',
    sub: 'user-1001',
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Anders',
    groups: ['engineering'],
  },
  {
    username: 'bob',
    password: 'bob-password',
    sub: 'user-1002',
    email: 'bob@example.com',
    email_verified: true,
    name: 'Bob Brown',
    groups: ['contractors'],
  },
  {
    username: 'carol',
    password: 'carol-password',
    sub: 'user-1003',
    email: 'carol@example.com',
    email_verified: false,
    name: 'Carol Chen',
    groups: ['engineering'],
  },
]

export interface IdpClient {
  client_id: string
  client_secret: string
  redirect_uris: string[]
  post_logout_redirect_uris?: string[]
  backchannel_logout_uri?: string
  /** Default 'client_secret_post', which is what openid-client 6 uses when given a secret string. */
  token_endpoint_auth_method?: 'client_secret_post' | 'client_secret_basic'
}

/** Lifetimes in seconds; each has a test-friendly default. */
export interface IdpTtl {
  /** Default 3600. */
  IdToken?: number
  /** Default 600. */
  AccessToken?: number
  /** Default 86400. */
  RefreshToken?: number
  /** The IdP's own sign-in session (SSO cookie). Default 3600. */
  Session?: number
  /** Default 86400. */
  Grant?: number
  /** A pending sign-in page. Default 600. */
  Interaction?: number
}

export interface StartIdpOptions {
  /** 0 (default) = any free port. */
  port?: number
  /** Address to listen on. Default 127.0.0.1. */
  host?: string
  /** Host name in the issuer URL. Default 'localhost', so the issuer is http://localhost:PORT (loopback). */
  issuerHost?: string
  clients: IdpClient[]
  /** Default DEMO_USERS. The IdP works on copies; the caller's objects are never changed. */
  users?: DemoUser[]
  ttl?: IdpTtl
}

export interface StartedIdp {
  issuer: string
  port: number
  close(): Promise<void>
  /** The oidc-provider Provider instance, for tests that need to reach in (events, models). */
  provider: unknown
  /** Later refreshes, userinfo calls and sign-ins see the new groups. */
  setUserGroups(username: string, groups: string[]): void
  /** The account stops existing: refresh and userinfo fail, its IdP sessions end, sign-in is refused. */
  disableUser(username: string): void
}

/** Raised when `oidc-provider` is not installed (it is a devDependency of Moatless). */
export class DemoIdpUnavailableError extends Error {
  readonly code = 'MOATLESS_ERR_DEMO_IDP_UNAVAILABLE'
  constructor(options: { cause: unknown }) {
    super(
      'the demo IdP needs the "oidc-provider" package, which is a development dependency of Moatless; ' +
        'install it with `npm install --no-save oidc-provider@9` (or `npm install` in a checkout)',
      options,
    )
    this.name = 'DemoIdpUnavailableError'
  }
}

const DEFAULT_TTL: Required<IdpTtl> = {
  IdToken: 3600,
  AccessToken: 600,
  RefreshToken: 86400,
  Session: 3600,
  Grant: 86400,
  Interaction: 600,
}

/** The claims each scope releases. `groups` rides on `profile` so `openid email profile` is enough. */
const CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'groups'],
  groups: ['groups'],
}

// ---------------------------------------------------------------------------------------------
// The slice of oidc-provider's API used here (the package ships no type declarations).

interface Interaction {
  uid: string
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> }
  params: Record<string, unknown>
  session?: { accountId: string }
  grantId?: string
}

interface Grant {
  addOIDCScope(scope: string): void
  addOIDCClaims(claims: string[]): void
  addResourceScope(resource: string, scope: string): void
  save(): Promise<string>
}

interface Provider {
  issuer: string
  urlFor(route: string): string
  callback(): (req: IncomingMessage, res: ServerResponse) => void
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>
  Grant: {
    new (init: { accountId: string; clientId: string }): Grant
    find(id: string): Promise<Grant | undefined>
  }
}

interface ProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => Provider
}

interface Account {
  accountId: string
  claims(): Promise<Record<string, unknown>>
}

// ---------------------------------------------------------------------------------------------

async function loadOidcProvider(): Promise<ProviderModule> {
  // A variable specifier keeps TypeScript from demanding declarations for an optional package.
  const specifier = 'oidc-provider'
  try {
    return (await import(specifier)) as ProviderModule
  } catch (cause) {
    const code = (cause as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new DemoIdpUnavailableError({ cause })
    throw cause
  }
}

export async function startIdp(opts: StartIdpOptions): Promise<StartedIdp> {
  const { default: ProviderClass } = await loadOidcProvider()
  const host = opts.host ?? '127.0.0.1'
  const issuerHost = opts.issuerHost ?? 'localhost'
  const ttl = { ...DEFAULT_TTL, ...opts.ttl }

  const users = new Map<string, DemoUser>()
  for (const u of opts.users ?? DEMO_USERS) users.set(u.username, { ...u, groups: [...u.groups] })
  const disabled = new Set<string>()
  const store = new IdpStore(15)

  const backchannelAgent = new Agent({ connect: { lookup: loopbackLookup } })
  const findBySub = (sub: string): DemoUser | undefined => {
    for (const u of users.values()) if (u.sub === sub && !disabled.has(u.username)) return u
    return undefined
  }

  // The issuer carries the port, so listen first and build the provider once the port is known.
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  const server = createServer((req, res) => {
    if (handle === undefined) {
      res.writeHead(503).end()
      return
    }
    handle(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const issuer = `http://${issuerHost}:${port}`

  let provider: Provider
  try {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true })
    const signingJwk = { ...(await exportJWK(privateKey)), kid: `demo-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' }

    provider = new ProviderClass(issuer, {
      adapter: store.adapterFactory(),
      clients: opts.clients.map((c) => ({
        client_id: c.client_id,
        client_secret: c.client_secret,
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
        ...(c.backchannel_logout_uri === undefined
          ? {}
          : { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: true }),
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_post',
      })),
      jwks: { keys: [signingJwk] },
      cookies: {
        keys: [randomBytes(32).toString('base64url')],
        // Cookies ignore ports: two IdPs on `localhost` in one browser must not see each other's.
        names: { session: `_idp${port}_session`, interaction: `_idp${port}_interaction`, resume: `_idp${port}_resume` },
      },
      claims: CLAIMS,
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
      // Put the scope's claims in the ID token even though an access token is issued too; the
      // proxy decides from the ID token and should not need a userinfo round trip.
      conformIdTokenClaims: false,
      responseTypes: ['code'],
      pkce: { required: () => true },
      findAccount: async (_ctx: unknown, sub: string): Promise<Account | undefined> => {
        if (findBySub(sub) === undefined) return undefined
        return {
          accountId: sub,
          // Looked up on every call, so setUserGroups shows in later refreshes and userinfo.
          claims: async () => {
            const u = findBySub(sub)
            if (u === undefined) return { sub }
            return { sub, email: u.email, email_verified: u.email_verified, name: u.name, groups: [...u.groups] }
          },
        }
      },
      interactions: { url: async (_ctx: unknown, interaction: Interaction) => `/interaction/${interaction.uid}` },
      features: {
        devInteractions: { enabled: false },
        backchannelLogout: { enabled: true },
        revocation: { enabled: true, allowedPolicy: async () => true },
        userinfo: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx: KoaLikeContext, form: string) => {
            ctx.type = 'html'
            ctx.body = logoutPage(form)
          },
          postLogoutSuccessSource: async (ctx: KoaLikeContext) => {
            ctx.type = 'html'
            ctx.body = signedOutPage()
          },
        },
        resourceIndicators: {
          enabled: true,
          // Any absolute URI is a resource server whose access tokens are JWTs (typ at+jwt).
          getResourceServerInfo: async (_ctx: unknown, resource: string) => ({
            scope: 'api',
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: ttl.AccessToken,
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      formats: {
        customizers: {
          // JWT access tokens also name the client in `aud` and carry the identity claims, so an
          // API client can present one to the proxy as it would an ID token.
          jwt: async (_ctx: unknown, token: { accountId?: string; clientId?: string }, jwt: { payload: Record<string, unknown> }) => {
            const aud = jwt.payload.aud
            const auds = Array.isArray(aud) ? aud : aud === undefined ? [] : [aud]
            if (token.clientId !== undefined && !auds.includes(token.clientId)) auds.push(token.clientId)
            jwt.payload.aud = auds
            const u = token.accountId === undefined ? undefined : findBySub(token.accountId)
            if (u !== undefined) Object.assign(jwt.payload, { email: u.email, email_verified: u.email_verified, name: u.name, groups: [...u.groups] })
          },
        },
      },
      ttl: {
        AccessToken: ttl.AccessToken,
        AuthorizationCode: 60,
        IdToken: ttl.IdToken,
        RefreshToken: ttl.RefreshToken,
        Session: ttl.Session,
        Grant: ttl.Grant,
        Interaction: ttl.Interaction,
      },
      clientBasedCORS: (_ctx: unknown, origin: string, client: { redirectUris: string[] }) =>
        client.redirectUris.some((uri) => URL.canParse(uri) && new URL(uri).origin === origin),
      renderError: async (ctx: KoaLikeContext, out: Record<string, string>) => {
        ctx.type = 'html'
        ctx.body = errorPage('The sign-in request could not be completed.', out)
      },
      // Back-channel logout goes to loopback receivers in the demo and tests, which the default
      // SSRF-guarded fetch refuses; `*.localhost` also does not resolve in Node everywhere.
      fetch: async (url: string | URL, init: Record<string, unknown>) => {
        const { dispatcher: _guarded, ...rest } = init
        return undiciFetch(url, { ...(rest as Parameters<typeof undiciFetch>[1]), dispatcher: backchannelAgent })
      },
    })
  } catch (err) {
    await closeServer(server)
    await backchannelAgent.close()
    throw err
  }

  const providerCallback = provider.callback()
  const authorizationPath = new URL(provider.urlFor('authorization')).pathname
  handle = (req, res) => {
    const url = new URL(req.url ?? '/', issuer)
    // oidc-provider follows OIDC Core 11 to the letter and drops offline_access unless the
    // request carries prompt=consent. Consent is automatic here, so asking for it costs the
    // user nothing: add it, and a client asking for offline_access gets its refresh token.
    if (
      req.method === 'GET' &&
      url.pathname === authorizationPath &&
      !url.searchParams.has('prompt') &&
      (url.searchParams.get('scope') ?? '').split(' ').includes('offline_access')
    ) {
      url.searchParams.set('prompt', 'consent')
      req.url = `${url.pathname}${url.search}`
    }
    const match = /^\/interaction\/([\w-]+)(\/login|\/abort)?$/.exec(url.pathname)
    if (match === null) {
      providerCallback(req, res)
      return
    }
    handleInteraction(req, res, match[2] ?? '').catch((err: unknown) => {
      if (!res.headersSent) sendHtml(res, 500, errorPage('The demo IdP failed.', { error: String(err) }))
      else res.destroy()
    })
  }

  const hintUsers = () =>
    [...users.values()]
      .filter((u) => !disabled.has(u.username))
      .map(({ username, password, email, groups, email_verified }) => ({ username, password, email, groups, email_verified }))

  async function handleInteraction(req: IncomingMessage, res: ServerResponse, action: string): Promise<void> {
    let details: Interaction
    try {
      details = await provider.interactionDetails(req, res)
    } catch {
      sendHtml(res, 400, errorPage('This sign-in request has expired or is unknown. Go back to the application and start again.'))
      return
    }
    const clientId = String(details.params.client_id ?? '')
    const renderLogin = (status: number, error?: string, username?: string) =>
      sendHtml(
        res,
        status,
        loginPage({
          action: `/interaction/${details.uid}/login`,
          abortAction: `/interaction/${details.uid}/abort`,
          clientId,
          users: hintUsers(),
          ...(error === undefined ? {} : { error }),
          ...(username === undefined ? {} : { username }),
        }),
      )

    if (req.method === 'GET' && action === '') {
      if (details.prompt.name === 'consent') {
        await grantConsent(req, res, details)
        return
      }
      renderLogin(200)
      return
    }
    if (req.method !== 'POST' || action === '') {
      res.writeHead(405, { allow: 'GET' }).end()
      return
    }
    if (action === '/abort') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
        { mergeWithLastSubmission: false },
      )
      return
    }
    if (details.prompt.name !== 'login') {
      await grantConsent(req, res, details)
      return
    }
    const form = new URLSearchParams(await readBody(req))
    const username = form.get('username') ?? ''
    const user = users.get(username)
    if (user === undefined || user.password !== (form.get('password') ?? '')) {
      renderLogin(200, 'Wrong username or password.', username)
      return
    }
    if (disabled.has(username)) {
      renderLogin(200, 'This account is disabled.', username)
      return
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false })
  }

  // The demo never asks for consent: grant whatever the client asked for, offline_access included.
  async function grantConsent(req: IncomingMessage, res: ServerResponse, details: Interaction): Promise<void> {
    const accountId = details.session?.accountId
    if (accountId === undefined) {
      sendHtml(res, 400, errorPage('This sign-in request has no signed-in user. Go back to the application and start again.'))
      return
    }
    const existing = details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)
    const grant = existing ?? new provider.Grant({ accountId, clientId: String(details.params.client_id) })
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details as {
      missingOIDCScope?: string[]
      missingOIDCClaims?: string[]
      missingResourceScopes?: Record<string, string[]>
    }
    if (missingOIDCScope !== undefined) grant.addOIDCScope(missingOIDCScope.join(' '))
    if (missingOIDCClaims !== undefined) grant.addOIDCClaims(missingOIDCClaims)
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '))
    const grantId = await grant.save()
    await provider.interactionFinished(req, res, { consent: existing === undefined ? { grantId } : {} }, { mergeWithLastSubmission: true })
  }

  return {
    issuer,
    port,
    provider,
    close: async () => {
      await closeServer(server)
      await backchannelAgent.destroy()
    },
    setUserGroups(username, groups) {
      const u = users.get(username)
      if (u === undefined) throw new Error(`no demo user named ${username}`)
      u.groups = [...groups]
    },
    disableUser(username) {
      const u = users.get(username)
      if (u === undefined) throw new Error(`no demo user named ${username}`)
      disabled.add(username)
      store.destroySessionsOf(u.sub)
    },
  }
}

/** The part of a Koa context the page renderers touch. */
interface KoaLikeContext {
  type: string
  body: unknown
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  })
  res.end(html)
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new Error('request body too large')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}
