import { createHash } from 'node:crypto'
import * as client from 'openid-client'
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'
import type { Config } from '../config/schema.js'
import { MoatlessError } from '../errors.js'
import { isLoopbackHost } from '../config/load.js'
import { idpFetch } from './idp-fetch.js'

export interface IdpLogger { warn (obj: object, msg: string): void; info (obj: object, msg: string): void }


/**
 * The relying-party side of the IdP: discovery (retried in the background until it
 * succeeds, so the proxy starts while the IdP is down and becomes ready when it is up),
 * and the calls the sign-in flow makes.
 */
export class Idp {
  private configuration: client.Configuration | null = null
  private discovering: Promise<client.Configuration> | null = null
  private retryTimer: NodeJS.Timeout | null = null
  private closed = false
  readonly redirectUri: string
  readonly postLogoutRedirectUri: string

  constructor (private readonly cfg: Config['idp'], authenticateUrl: string, private readonly log: IdpLogger) {
    this.redirectUri = `${authenticateUrl}/.moatless/callback`
    this.postLogoutRedirectUri = `${authenticateUrl}/.moatless/signed_out`
  }

  get ready (): boolean { return this.configuration !== null }

  /** Starts discovery; on failure retries every few seconds until it succeeds. */
  start (): void {
    this.get().catch(() => {})
  }

  /** The discovered configuration, or MOATLESS_ERR_IDP_UNAVAILABLE. */
  async get (): Promise<client.Configuration> {
    if (this.configuration !== null) return this.configuration
    if (this.discovering === null) {
      const issuer = new URL(this.cfg.issuer)
      const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname)
      this.discovering = client.discovery(issuer, this.cfg.client_id, this.cfg.client_secret, undefined, {
        execute: insecure ? [client.allowInsecureRequests] : [],
        timeout: 5,
        [client.customFetch]: idpFetch
      })
      this.discovering.then((c) => {
        this.configuration = c
        this.log.info({ issuer: this.cfg.issuer }, 'identity provider discovered')
      }, (err: unknown) => {
        this.discovering = null
        this.log.warn({ issuer: this.cfg.issuer, err: errText(err) }, 'identity provider discovery failed; retrying')
        if (!this.closed && this.retryTimer === null) {
          this.retryTimer = setTimeout(() => { this.retryTimer = null; this.start() }, 3000)
          this.retryTimer.unref()
        }
      })
    }
    try {
      return await this.discovering
    } catch (err) {
      throw new MoatlessError('MOATLESS_ERR_IDP_UNAVAILABLE', undefined, { cause: err })
    }
  }

  async authorizationUrl (p: { state: string; nonce: string; codeVerifier: string; maxAgeSec?: number }): Promise<string> {
    const config = await this.get()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: this.cfg.scopes.join(' '),
      response_type: 'code',
      state: p.state,
      nonce: p.nonce,
      // S256 (RFC 7636 4.2), hashed in one synchronous call rather than openid-client's WebCrypto round trip.
      code_challenge: createHash('sha256').update(p.codeVerifier, 'ascii').digest('base64url'),
      code_challenge_method: 'S256',
      ...(this.cfg.scopes.includes('offline_access') ? { prompt: 'consent' } : {}),
      ...(p.maxAgeSec === undefined ? {} : { max_age: String(p.maxAgeSec) })
    })
    return url.href
  }

  /**
   * Redeems the code. `callbackQuery` is the query string the browser brought; the URL it is
   * checked against is built from config (never from request headers).
   */
  async redeem (callbackQuery: string, checks: { state: string; nonce: string; codeVerifier: string }): Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers> {
    const config = await this.get()
    const current = new URL(this.redirectUri)
    current.search = callbackQuery
    return await client.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: checks.codeVerifier,
      expectedState: checks.state,
      expectedNonce: checks.nonce,
      idTokenExpected: true
    })
  }

  async userinfo (accessToken: string, sub: string): Promise<Record<string, unknown>> {
    const config = await this.get()
    return await client.fetchUserInfo(config, accessToken, sub)
  }

  async refresh (refreshToken: string): Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers> {
    return await client.refreshTokenGrant(await this.get(), refreshToken)
  }

  /** The IdP's end-session URL, or null when it offers none. */
  endSessionUrl (idTokenHint: string | undefined): string | null {
    const config = this.configuration
    if (config === null || config.serverMetadata().end_session_endpoint === undefined) return null
    const params: Record<string, string> = { post_logout_redirect_uri: this.postLogoutRedirectUri, client_id: this.cfg.client_id }
    if (idTokenHint !== undefined) params.id_token_hint = idTokenHint
    return client.buildEndSessionUrl(config, params).href
  }

  private remoteJwks: JWTVerifyGetKey | null = null

  /**
   * The IdP's signing keys, from its discovered `jwks_uri` only (never from a token's
   * `jku`/`x5u`/`jwk` header). jose caches them and refetches on an unknown `kid`, so key
   * rotation at the IdP needs no restart. Throws MOATLESS_ERR_IDP_UNAVAILABLE before discovery.
   */
  async jwks (): Promise<JWTVerifyGetKey> {
    const config = await this.get()
    if (this.remoteJwks === null) {
      const uri = config.serverMetadata().jwks_uri
      if (uri === undefined) throw new MoatlessError('MOATLESS_ERR_IDP_UNAVAILABLE', 'the IdP publishes no jwks_uri')
      this.remoteJwks = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 })
    }
    return this.remoteJwks
  }

  /** Asymmetric algorithms the IdP says it signs ID tokens with (never `none`, never HS*). */
  signingAlgs (): string[] {
    const advertised = this.configuration?.serverMetadata().id_token_signing_alg_values_supported ?? ['RS256']
    return advertised.filter((a) => a !== 'none' && !a.startsWith('HS'))
  }

  get clientId (): string { return this.cfg.client_id }
  get issuer (): string { return this.configuration?.serverMetadata().issuer ?? this.cfg.issuer }

  metadata (): client.ServerMetadata | null {
    return this.configuration?.serverMetadata() ?? null
  }

  close (): void {
    this.closed = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
  }
}

export function errText (err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message
  }
  return String(err)
}
