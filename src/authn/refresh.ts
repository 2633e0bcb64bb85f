import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import * as client from 'openid-client'
import type { SessionRecord, Store } from '../store/index.js'
import { errText, type Idp } from './oidc.js'
import type { Sealer } from './seal.js'
import type { StoredTokens } from './routes.js'

/** Longer than any IdP call may take (openid-client times out well before), so a lease never expires mid-refresh. */
const LEASE_MS = 60_000

/**
 * Continuous verification: every `session.refresh_interval` a session's user is checked again
 * at the IdP with the refresh token. New groups and claims take effect on every replica; an
 * IdP that refuses the refresh (user disabled, grant revoked) ends the session. At most one
 * refresh per session runs at a time across all replicas (a lease in the store).
 */
export class SessionRefresher {
  private readonly owner = randomUUID()
  private readonly inFlight = new Set<string>()

  constructor (private readonly o: {
    store: Store
    idp: Idp
    tokenSealer: Sealer
    groupsClaim: string
    idleMs: number
    log: Logger
    /** Ends a session everywhere (store + event). */
    revoke: (id: string) => Promise<void>
  }) {}

  /** Starts a refresh in the background unless one is already running for this session. */
  trigger (record: SessionRecord): void {
    if (this.inFlight.has(record.id)) return
    this.inFlight.add(record.id)
    this.refresh(record).catch(() => {}).finally(() => this.inFlight.delete(record.id))
  }

  async refresh (record: SessionRecord): Promise<'refreshed' | 'ended' | 'skipped'> {
    const { store, log } = this.o
    const lease = `refresh:${record.id}`
    if (!await store.acquireLease(lease, this.owner, LEASE_MS)) return 'skipped'
    try {
      // Another replica may have refreshed it just before we took the lease.
      const current = await store.getSession(record.id)
      if (current === null) return 'skipped'
      if (current.refreshed_at > record.refreshed_at) return 'skipped'
      const tokens = this.o.tokenSealer.unseal<StoredTokens>(current.tokens) ?? {}
      if (tokens.refresh_token === undefined) {
        // Nothing to re-check with: record the attempt so it is not retried on every request.
        current.refreshed_at = Date.now()
        await store.putSession(current, this.o.idleMs)
        return 'skipped'
      }
      let fresh: Awaited<ReturnType<Idp['refresh']>>
      try {
        fresh = await this.o.idp.refresh(tokens.refresh_token)
      } catch (err) {
        if (err instanceof client.ResponseBodyError || err instanceof client.AuthorizationResponseError) {
          log.info({ session: current.id.slice(0, 8), user: current.email ?? current.sub, err: errText(err) }, 'session ended: the IdP refused the refresh')
          await this.o.revoke(current.id)
          return 'ended'
        }
        log.warn({ err: errText(err) }, 'session refresh failed (IdP unreachable?); will retry')
        return 'skipped'
      }
      const claims = fresh.claims()
      let groups = current.groups
      let email = current.email
      if (claims !== undefined) {
        if (claims.sub !== current.sub) { await this.o.revoke(current.id); return 'ended' }
        if (claims[this.o.groupsClaim] !== undefined) groups = groupsOf(claims[this.o.groupsClaim])
        if (typeof claims.email === 'string') email = claims.email
      }
      if ((claims === undefined || claims[this.o.groupsClaim] === undefined) && fresh.access_token !== undefined && this.o.idp.metadata()?.userinfo_endpoint !== undefined) {
        try {
          const info = await this.o.idp.userinfo(fresh.access_token, current.sub)
          if (info[this.o.groupsClaim] !== undefined) groups = groupsOf(info[this.o.groupsClaim])
        } catch (err) {
          if (err instanceof client.ResponseBodyError || err instanceof client.WWWAuthenticateChallengeError) {
            await this.o.revoke(current.id)
            return 'ended'
          }
        }
      }
      const next: SessionRecord = {
        ...current,
        email,
        groups,
        claims: claims === undefined ? current.claims : stripProtocolClaims(claims),
        tokens: this.o.tokenSealer.seal({
          id_token: fresh.id_token ?? tokens.id_token,
          access_token: fresh.access_token,
          refresh_token: fresh.refresh_token ?? tokens.refresh_token
        } satisfies StoredTokens),
        refreshed_at: Date.now()
      }
      // XX-like safety: the session may have been revoked while we talked to the IdP.
      if (await store.getSession(current.id) === null) return 'ended'
      await store.putSession(next, this.o.idleMs)
      await store.publish({ type: 'session-updated', ids: [current.id] })
      return 'refreshed'
    } finally {
      await store.releaseLease(lease, this.owner).catch(() => {})
    }
  }
}

export function groupsOf (v: unknown): string[] {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.filter((g): g is string => typeof g === 'string')
  return []
}

export function stripProtocolClaims (claims: Record<string, unknown>): Record<string, unknown> {
  const { nonce: _n, at_hash: _a, c_hash: _c, ...kept } = claims
  return kept
}
