/**
 * The request flow, in order. Each stage is a fastify plugin that names the one before it
 * as a dependency, so registering them out of order fails at boot:
 *
 *   intake        (proxy)         host → app (404), path normalized (400), client address
 *   authn         (authn)         session cookie → identity; store down → undecidable
 *   device-trust  (device-trust)  device identity → trust level
 *   authz         (authz)         rules → allow | 302/401 | 403 | 503
 *   sign-in       (authn)         /.moatless/* endpoints: sign_in, callback, handoff, sign_out
 *   device-report (device-trust)  POST /.moatless/device/report: signed posture reports
 *   forward       (proxy)         assertion + upstream headers → @fastify/http-proxy
 *   decision-log  (proxy)         one log line per request
 *
 * The stages' per-request steps (intake to forward) run in this order in one onRequest hook
 * (`addStage`, src/context.ts); the endpoints are routes; the decision line is an onResponse hook.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { compileRuleSet, type RuleSet } from './authz/index.js'
import { authorizeStage } from './authz/plugin.js'
import { BearerVerifier } from './authn/bearer.js'
import { Idp } from './authn/oidc.js'
import { signInRoutes } from './authn/routes.js'
import { backchannelLogout } from './authn/backchannel.js'
import { SessionRefresher } from './authn/refresh.js'
import { Sealer } from './authn/seal.js'
import { sessionStage } from './authn/session-stage.js'
import { Sessions } from './authn/sessions.js'
import type { Config } from './config/schema.js'
import { StateHolder, type RuntimeState } from './context.js'
import { ClientCertificates } from './device-trust/client-cert.js'
import { DeviceTrust } from './device-trust/device-trust.js'
import { DeviceInventory } from './device-trust/inventory.js'
import { deviceReport } from './device-trust/report.js'
import { deviceStage } from './device-trust/stage.js'
import { TrustLevels } from './device-trust/trust-levels.js'
import { MoatlessError } from './errors.js'
import { Metrics } from './metrics.js'
import { sendJson } from './pages.js'
import { AssertionSigner } from './proxy/assertion.js'
import { decisionLog } from './proxy/decision-log.js'
import { LazyRequestLogger } from './log.js'
import { DecisionSampler } from './proxy/decision-samples.js'
import { OpenConnections } from './proxy/connections.js'
import { requestId } from './proxy/request-id.js'
import { appsAsWritten } from './rules/ruleset.js'
import { RuleSync } from './rules/sync.js'
import { forward } from './proxy/forward.js'
import { intake, trustedProxyList } from './proxy/intake.js'
import type { Store } from './store/index.js'

export interface BuildOptions {
  config: Config
  store: Store
  logger: Logger
  /** The config's `apps:` as written (LoadedConfig.raw.apps): seeds an empty store. Defaults to the parsed apps, written back (appsAsWritten). */
  rawApps?: unknown[]
  /** How often a replica checks the store's active rule set besides pub/sub (ms; 0 = never). */
  rulesPollMs?: number
}

export interface Moatless {
  app: FastifyInstance
  state: StateHolder
  store: Store
  idp: Idp
  sessions: Sessions
  signer: AssertionSigner
  metrics: Metrics
  connections: OpenConnections
  rules: RuleSync
  refresher: SessionRefresher
  devices: DeviceTrust
  /** Replaces the rule set atomically (already compiled, off the request path). */
  swapRuleSet (ruleset: RuleSet): void
  /** Stops background work (rule polling, sampling); the fastify instance is closed separately. */
  stop (): void
}

export function runtimeState (config: Config, ruleset: RuleSet): RuntimeState {
  return Object.freeze({ config, ruleset, appOrigins: new Set(ruleset.apps.map((a) => a.origin)) })
}

export function compileOrThrow (config: Config): RuleSet {
  const r = compileRuleSet(config.apps, config.device_trust.levels.map((l) => l.name))
  if (!r.ok) throw new MoatlessError('MOATLESS_ERR_CONFIG', r.errors.map((e) => `${e.path.join('.')}: ${e.message}`).join('\n'))
  return r.ruleset
}

export async function build (opts: BuildOptions): Promise<Moatless> {
  const { config, store, logger } = opts
  const state = new StateHolder(runtimeState(config, compileOrThrow(config)))
  const metrics = new Metrics()
  const cookieSealer = new Sealer(config.session.secret, 'cookie')
  const tokenSealer = new Sealer(config.session.secret, 'tokens')
  const sessions = new Sessions(store, {
    lifetimeMs: config.session.lifetime,
    idleMs: config.session.idle_timeout,
    outageGraceMs: config.store?.store_outage_grace ?? 0,
    refreshMs: config.session.refresh_interval
  }, config.session.cache_size)
  const idp = new Idp(config.idp, config.authenticate.url, logger)
  idp.start()
  const replica = randomUUID()
  const connections = new OpenConnections(logger)
  const sampler = new DecisionSampler(store, replica)
  const refresher = new SessionRefresher({
    store,
    idp,
    tokenSealer,
    groupsClaim: config.idp.groups_claim,
    idleMs: config.session.idle_timeout,
    log: logger,
    revoke: (id) => sessions.revoke(id)
  })
  sessions.whenStale((record) => refresher.trigger(record))

  // Open connections are decided again when what they depended on changes.
  store.onEvent((e) => {
    if (e.type === 'session-revoked') connections.closeSessions(new Set(e.ids), 'session ended')
    if (e.type === 'session-updated') {
      for (const c of connections.ofSessions(new Set(e.ids))) {
        void sessions.lookup(c.sessionId).then((found) => {
          c.update(found.status === 'ok' ? found.identity : null)
          connections.reauthorize(state.current.ruleset, 'session updated')
        })
      }
    }
  })
  const tls = config.listen.tls
  const outageGraceMs = config.store?.store_outage_grace ?? 0
  const devices = new DeviceTrust({
    store,
    inventory: new DeviceInventory(store, { outageGraceMs }),
    levels: new TrustLevels(config.device_trust.levels, config.device_trust.report_max_age),
    certificates: tls?.client_ca === undefined ? null : new ClientCertificates(readFileSync(tls.client_ca, 'utf8')),
    audience: config.authenticate.url,
    outageGraceMs
  })
  // After the inventory's own listener (registered first) has dropped the old record.
  store.onEvent((e) => {
    if (e.type !== 'device-changed') return
    const affected = connections.ofDevices(new Set([e.id]))
    if (affected.length === 0) return
    void Promise.all(affected.map(async (c) => { c.update(await devices.recheck(c.deviceId, c.identity)) }))
      .then(() => connections.reauthorize(state.current.ruleset, 'device changed'))
  })
  const swapRuleSet = (ruleset: RuleSet): void => {
    state.swap(runtimeState(state.current.config, ruleset))
    connections.reauthorize(ruleset, 'rules changed')
  }
  const rules = new RuleSync({
    store,
    log: logger,
    levels: config.device_trust.levels.map((l) => l.name),
    configApps: opts.rawApps ?? appsAsWritten(config.apps),
    swap: (ruleset) => swapRuleSet(ruleset),
    pollMs: opts.rulesPollMs
  })
  await rules.start()
  const signer = await AssertionSigner.load({ file: config.signing_key, store, issuer: config.authenticate.url })
  const authHost = new URL(config.authenticate.url).host

  const app: FastifyInstance = Fastify({
    loggerInstance: logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (parent, bindings, opts) => new LazyRequestLogger(parent as unknown as Logger, bindings, opts) as unknown as FastifyBaseLogger,
    genReqId: requestId,
    requestIdHeader: false,
    trustProxy: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { caseSensitive: true, ignoreDuplicateSlashes: false, ignoreTrailingSlash: false },
    // The router refuses a URL it cannot decode (escapes that are not UTF-8, such as the
    // overlong `%C0%AE`) before any stage runs: answer it like intake's other 400s, not with
    // fastify's default body that echoes the URL.
    frameworkErrors: (err, req, reply) => {
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400
      const url = req.raw.url ?? ''
      const q = url.indexOf('?')
      const reason = err.code === 'FST_ERR_BAD_URL' ? 'malformed-escape' : 'bad-url'
      logger.info({
        request_id: req.id,
        app: null,
        method: req.raw.method,
        path: (q === -1 ? url : url.slice(0, q)).slice(0, 512),
        user: null,
        device_id: null,
        device_trust: 'none',
        decision: 'deny',
        rule: 'bad-request',
        reason,
        status,
        duration: 0
      }, 'decision')
      return sendJson(reply, status, { error: 'bad_request', reason, request_id: req.id })
    },
    ...(tls === undefined
      ? {}
      : {
          https: {
            cert: readFileSync(tls.cert),
            key: readFileSync(tls.key),
            ...(tls.client_ca === undefined ? {} : { ca: readFileSync(tls.client_ca), requestCert: true, rejectUnauthorized: false })
          }
        })
  })

  // Never a stack trace, never internals: a status and an error code.
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (status >= 500) req.log.error({ request_id: req.id, err: { code: err.code, message: err.message } }, 'request failed')
    if (req.moatless !== null && req.moatless !== undefined && req.moatless.decision === null) {
      req.moatless.decision = { decision: 'deny', rule: status === 400 ? 'bad-request' : 'error', reasons: [] }
    }
    return sendJson(reply, status, { error: status === 400 ? 'bad_request' : status >= 500 ? 'internal_error' : 'error', request_id: req.id })
  })

  await app.register(intake, {
    state,
    authHost,
    listenerProto: tls === undefined ? 'http' : 'https',
    trustedProxies: trustedProxyList(config.trusted_proxies)
  })
  await app.register(sessionStage, { sessions, cookieSealer, cacheSize: config.session.cache_size, bearer: new BearerVerifier(idp, config.idp.groups_claim) })
  await app.register(deviceStage, { devices, certificates: devices.certificates, registry: metrics.registry })
  await app.register(authorizeStage, { authenticateUrl: config.authenticate.url, metrics })
  await app.register(signInRoutes, { state, store, sessions, idp, cookieSealer, tokenSealer, log: logger })
  await app.register(deviceReport, { store, levels: devices.levels, authenticateUrl: config.authenticate.url, log: logger })
  await app.register(backchannelLogout, { idp, store, log: logger, revoke: (ids: string[]) => sessions.revokeMany(ids) })
  app.get('/.well-known/moatless/jwks.json', { config: { moatless: { internal: 'any' } } }, async (_req, reply) => {
    return sendJson(reply.header('cache-control', 'public, max-age=300'), 200, signer.jwks())
  })
  await app.register(forward, { signer, metrics, log: logger, connections, sampler })
  await app.register(decisionLog, { log: logger, metrics, sampler })
  app.addHook('onClose', async () => {
    rules.stop()
    sampler.close()
    await sampler.flush()
  })

  return {
    app,
    state,
    store,
    idp,
    sessions,
    signer,
    metrics,
    connections,
    rules,
    refresher,
    devices,
    swapRuleSet,
    stop () { rules.stop(); sampler.close() }
  }
}
