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

import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
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

/** A stage's step: what it does with every request, in the order the stages are registered. */
export type Stage = (req: FastifyRequest, reply: FastifyReply) => StageStep

const STAGES = Symbol('moatless.stages')

/**
 * Adds a stage's step to the request flow. The steps of all stages run in one fastify onRequest
 * hook, in the order the stages add them (the order their plugins are registered in; each
 * stage's plugin names the one before it as a dependency). One hook rather than one per stage:
 * fastify's hook runner costs a call and a check between hooks, and most requests are answered
 * from memory, so the steps call each other directly and wait only for a step that returned a
 * promise (a store read, a signature). A step that answered the request (returned the reply)
 * ends the flow; a step that throws, or whose promise rejects, goes to the error handler.
 */
export function addStage (fastify: FastifyInstance, step: Stage): void {
  const holder = fastify as FastifyInstance & { [STAGES]?: Stage[] }
  let stages = holder[STAGES]
  if (stages === undefined) {
    const all: Stage[] = []
    fastify.decorate(STAGES, all)
    fastify.addHook('onRequest', function stages (req, reply, done) { runStages(all, 0, req, reply, done) })
    stages = all
  }
  stages.push(step)
}

function runStages (stages: Stage[], from: number, req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  for (let i = from; i < stages.length; i++) {
    let r: StageStep
    try {
      r = (stages[i] as Stage)(req, reply)
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)))
      return
    }
    if (r === undefined) continue
    if (r instanceof Promise) {
      const next = i + 1
      r.then(() => { if (!reply.sent) runStages(stages, next, req, reply, done) }, (err: unknown) => { done(err instanceof Error ? err : new Error(String(err))) })
    }
    // Otherwise the stage has answered: the flow ends here.
    return
  }
  done()
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
