/**
 * The one place where the stages meet. proxy, authn, device-trust and authz never import
 * each other: each reads and writes these typed request decorations.
 */

/** Who the request is from, after authn. Same shape for cookie sessions and bearer tokens. */
export interface Identity {
  sub: string
  email?: string
  email_verified?: boolean
  groups: string[]
  /** All ID-token (or access-token) claims, for `claims:` criteria. */
  claims: Record<string, unknown>
  /** 'session' (cookie) or 'bearer' (Authorization header). */
  via: 'session' | 'bearer'
  /** Server-side session id when via = session. */
  session_id?: string
  /** Session creation time (ms since epoch) when via = session. */
  session_created_at?: number
}

/** The device behind the request, after device-trust. `trust` is 'none' or a configured level name. */
export interface DeviceContext {
  id: string | null
  trust: string
  /** 0 for 'none', 1 for the first configured level, ... */
  trustRank: number
  /** Plain-language reasons why the device is not at a higher level (for deny pages). */
  reasons: string[]
  /**
   * For each configured level the device is not at: what it lacks and what its user can do
   * about it (deny pages). Absent when there is nothing to say (no device presented).
   */
  shortfalls?: Readonly<Record<string, readonly DeviceShortfall[]>>
}

/** One thing between a device and a trust level, in plain words, with the way to fix it. */
export interface DeviceShortfall {
  /** e.g. 'disk encryption is off' */
  reason: string
  /** e.g. 'Turn on disk encryption (FileVault / BitLocker / LUKS), then run `moatless agent report`.' */
  remedy: string
}

export const NO_DEVICE: DeviceContext = Object.freeze({ id: null, trust: 'none', trustRank: 0, reasons: [] as string[] }) as DeviceContext

/** Outcome of authz.evaluate. */
export interface Decision {
  decision: 'allow' | 'deny' | 'unauthenticated'
  /** The deciding rule's name, 'public-path', 'default-deny' or 'authentication-required'. */
  rule: string
  /** '<rule>: <kebab-case code>: <plain words>', e.g. 'admins: groups-unauthorized: needs group engineering (member of: contractors)'. */
  reasons: string[]
}

// ---------------------------------------------------------------------------------------------
// Runtime state and the per-request context.

import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { Config } from './config/schema.js'
import type { CompiledApp, RuleSet } from './authz/index.js'

/** Immutable runtime state built from config; swapped as a whole when the rule set changes. */
export interface RuntimeState {
  readonly config: Config
  readonly ruleset: RuleSet
  /** Origins `rd` may point to (every app's origin). */
  readonly appOrigins: ReadonlySet<string>
}

export class StateHolder {
  constructor (public current: RuntimeState) {}
  swap (next: RuntimeState): void { this.current = next }
}

export interface RequestContext {
  id: string
  startedAt: number
  /** 'auth' = the authenticate origin; 'app' = an app's origin. */
  site: 'app' | 'auth'
  /**
   * On Moatless's own endpoints, where they are served (their route config `moatless.internal`,
   * read once here: fastify builds `req.routeOptions` anew on every read); null on the
   * catch-all route that forwards.
   */
  internal: 'auth' | 'app' | 'any' | null
  app: CompiledApp | null
  /** Normalized path, exactly what is decided on and forwarded. */
  path: string
  /** Query string, verbatim, '' or '?...'. */
  search: string
  host: string
  clientIp: string
  /** The TCP peer is one of `trusted_proxies`: its X-Forwarded-* and X-Client-Cert headers are believed. */
  peerTrusted: boolean
  /** Scheme the client used, as far as we can tell (listener, or a trusted proxy's X-Forwarded-Proto). */
  proto: 'http' | 'https'
  /** X-Forwarded-For value to send upstream. */
  forwardedFor: string
  /** GET/HEAD that accepts text/html: gets redirects and HTML pages instead of JSON. */
  wantsHtml: boolean
  identity: Identity | null
  device: DeviceContext
  decision: Decision | null
  /** When the decision could not be made (store or IdP down). */
  unavailable: boolean
  websocket: boolean
  /** X-Moatless-Jwt-Assertion for the upstream (forward), null when none is sent. */
  assertion: string | null
  /** performance.now() when the request was handed to the upstream; 0 before. */
  forwardedAt: number
  /** The decision line has been written (it is written once). */
  logged: boolean
}

/**
 * What a stage's onRequest step returns: nothing to go on to the next stage, the reply when
 * it has answered the request itself, or a promise when it has to wait (a store read, a
 * signature) before going on.
 */
export type StageStep = FastifyReply | undefined | Promise<void>

/**
 * A stage's step as a fastify onRequest hook. Stages answer most requests from memory (a
 * cached session, a cached assertion): as `async` hooks they would still cost a promise and a
 * microtask turn each, on every request, so the hook calls `done` itself and waits only for
 * a step that returned a promise.
 */
export function stageHook (step: (req: FastifyRequest, reply: FastifyReply) => StageStep): onRequestHookHandler {
  return function stage (req, reply, done) {
    const r = step(req, reply)
    if (r === undefined) done()
    else if (r instanceof Promise) r.then(() => { done() }, (err: unknown) => { done(err instanceof Error ? err : new Error(String(err))) })
    // Otherwise the stage has answered: a hook that replies does not go on.
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    moatless: RequestContext
  }
  interface FastifyContextConfig {
    /** Set on Moatless's own endpoints: where they are served ('auth', 'app' or 'any' origin). */
    moatless?: { internal: 'auth' | 'app' | 'any' }
  }
}
