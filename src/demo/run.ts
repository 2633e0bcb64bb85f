/**
 * `moatless demo`: the whole thing in one process, no Docker, no Redis. The embedded OIDC
 * provider with its demo users, the two demo apps (apps.ts), and the proxy running
 * config/demo.yaml, with secrets generated at start: once on the HTTP port and once on the
 * HTTPS port (client certificates: device identity), both on one store. Alice's laptop is
 * enrolled at start (device.ts) and a simulated device agent (agent-page.ts) sends its
 * posture reports.
 *
 * `startDemo` starts it and hands back a handle (the browser test drives it that way);
 * `runDemo` is the CLI path: start, print the banner, wait for Ctrl-C / SIGTERM, stop.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { parseDocument } from 'yaml'
import { formatErrors, loadConfigText, type Config } from '../config/index.js'
import { TrustLevels } from '../device-trust/trust-levels.js'
import { createLogger } from '../log.js'
import { startServer, type RunningServer } from '../server.js'
import { encodeRuleSet } from '../rules/ruleset.js'
import { openStore } from '../store/index.js'
import { startAgentPage, type AgentPage } from './agent-page.js'
import { startDemoApps, type DemoApps } from './apps.js'
import { demoDeviceRecord, prepareDemoDevice, type DemoDevice } from './device.js'
import { DEMO_USERS, startIdp, type StartedIdp } from './idp.js'

/** config/demo.yaml, found from src/demo/ (tsx) and dist/demo/ (built) alike. */
export const DEMO_CONFIG_FILE = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url))

export interface DemoOptions {
  /** Public port. Default 8080. */
  port?: number
  /** HTTPS port (the admin app with device certificates). Default 8443. */
  tlsPort?: number
  /** Port of the simulated device agent page on 127.0.0.1. Default: any free port. */
  agentPort?: number
  /** Where the demo CA and alice's device certificate are kept. Default ~/.cache/moatless-demo. */
  dir?: string
  /** Run on this Redis (redis://...) instead of the memory store. */
  redis?: string
  /** Logger for the proxy's lines (decision logs included). Default: JSON lines on stdout. */
  logger?: Logger
}

export interface Demo {
  port: number
  /** http://auth.localhost:PORT */
  authUrl: string
  /** Public origins of the apps. */
  wikiUrl: string
  adminAppUrl: string
  /** The admin app over HTTPS, where a browser can present the device certificate. */
  adminTlsUrl: string
  /** The simulated device agent for alice's laptop. */
  agentUrl: string
  device: DemoDevice
  /** The embedded IdP's issuer, http://localhost:IDP_PORT */
  idpIssuer: string
  /** The admin listener: /healthz, /readyz, /metrics. */
  adminUrl: string
  config: Config
  server: RunningServer
  tlsServer: RunningServer
  close (): Promise<void>
}

export class DemoStartError extends Error {
  readonly code = 'MOATLESS_ERR_DEMO_START'
}

/** Starts the IdP, the demo apps and the proxy. Nothing prints; the caller owns the handle. */
export async function startDemo (opts: DemoOptions = {}): Promise<Demo> {
  const port = opts.port ?? 8080
  const tlsPort = opts.tlsPort ?? 8443
  if (!isPort(port)) throw new DemoStartError(`--port must be a TCP port (1-65535); got ${String(port)}`)
  if (!isPort(tlsPort) || tlsPort === port) throw new DemoStartError(`--tls-port must be a TCP port (1-65535) other than --port; got ${String(tlsPort)}`)
  const logger = opts.logger ?? createLogger()
  const authUrl = `http://auth.localhost:${port}`
  const clientSecret = randomBytes(32).toString('base64url')
  const sessionSecret = randomBytes(48).toString('base64url')

  const cleanup: Array<() => Promise<void>> = []
  const unwind = async (): Promise<void> => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {})
  }
  try {
    let device: DemoDevice
    try {
      device = await prepareDemoDevice(opts.dir)
    } catch (err) {
      throw new DemoStartError(`cannot make the demo's certificates: ${(err as Error).message}`, { cause: err })
    }

    const idp: StartedIdp = await startIdp({
      clients: [{
        client_id: 'moatless-demo',
        client_secret: clientSecret,
        redirect_uris: [`${authUrl}/.moatless/callback`],
        post_logout_redirect_uris: [`${authUrl}/.moatless/signed_out`]
      }]
    })
    cleanup.push(() => idp.close())

    const apps: DemoApps = await startDemoApps({ proxyPort: port, tlsPort, issuer: authUrl })
    cleanup.push(() => apps.close())

    const { config, rawApps } = demoConfig({
      DEMO_PORT: String(port),
      DEMO_TLS_PORT: String(tlsPort),
      DEMO_IDP_ISSUER: idp.issuer,
      DEMO_WIKI_UPSTREAM: apps.wiki.url,
      DEMO_ADMIN_UPSTREAM: apps.admin.url,
      DEMO_CLIENT_SECRET: clientSecret,
      DEMO_SESSION_SECRET: sessionSecret
    }, opts.redis)

    // One store for both listeners: a sign-in, a device change or a sign-out on one is seen by the other.
    const store = await openStore(config)
    cleanup.push(() => store.close())
    if (store.kind === 'redis' && !store.healthy) throw new DemoStartError(`Redis at ${opts.redis ?? '?'} does not answer`)
    await store.putDevice(demoDeviceRecord(device))
    // This run's rules, whatever an earlier run left in Redis (its apps had other ports).
    const rules = encodeRuleSet(rawApps, 'moatless demo')
    await store.putRuleSet(rules.version, rules.body)
    await store.activateRuleSet(rules.version)

    const listen = async (cfg: Config, flag: string): Promise<RunningServer> => {
      try {
        return await startServer(cfg, logger, { store, rawApps })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new DemoStartError(`port ${cfg.listen.port} is already in use; pick another with ${flag} (npm run demo -- ${flag} ${cfg.listen.port + 1})`, { cause: err })
        }
        throw err
      }
    }
    const server = await listen(config, '--port')
    cleanup.push(() => server.close())
    const tlsServer = await listen({
      ...config,
      listen: { ...config.listen, port: tlsPort, tls: { cert: device.files.serverCert, key: device.files.serverKey, client_ca: device.files.ca } }
    }, '--tls-port')
    cleanup.push(() => tlsServer.close())
    // The IdP is up already; wait for discovery so the first click signs in at once.
    await Promise.all([server.moatless.idp.get(), tlsServer.moatless.idp.get()])

    const agent: AgentPage = await startAgentPage({
      device,
      store,
      levels: new TrustLevels(config.device_trust.levels, config.device_trust.report_max_age),
      authUrl,
      port: opts.agentPort
    })
    cleanup.push(() => agent.close())

    let closing: Promise<void> | null = null
    return {
      port,
      authUrl,
      wikiUrl: `http://wiki.localhost:${port}`,
      adminAppUrl: `http://admin.localhost:${port}`,
      adminTlsUrl: `https://admin.localhost:${tlsPort}`,
      agentUrl: agent.url,
      device,
      idpIssuer: idp.issuer,
      adminUrl: server.adminUrl,
      config,
      server,
      tlsServer,
      close () {
        closing ??= unwind()
        return closing
      }
    }
  } catch (err) {
    await unwind()
    throw err
  }
}

function isPort (p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535
}

/** config/demo.yaml with the demo's values, plus a `store:` section for --redis. */
function demoConfig (env: Record<string, string>, redis: string | undefined): { config: Config; rawApps: unknown[] } {
  let text = readFileSync(DEMO_CONFIG_FILE, 'utf8')
  if (redis !== undefined) {
    const doc = parseDocument(text)
    doc.set('store', { redis, key_prefix: 'moatless-demo:' })
    text = doc.toString()
  }
  const r = loadConfigText(text, DEMO_CONFIG_FILE, env)
  if (!r.ok) throw new DemoStartError(`the demo config does not load:\n${formatErrors(r.errors)}`)
  const apps = r.loaded.raw.apps
  return { config: r.loaded.config, rawApps: Array.isArray(apps) ? apps : [] }
}

/** What each demo user meets, in the banner. */
const EXPECT: Record<string, string> = {
  alice: 'wiki ✓   wiki /admin/ ✓   admin app: ✗ until her laptop reports a healthy posture, then ✓ (HTTPS only)',
  bob: 'wiki ✓   wiki /admin/ ✗ (no-contractors-in-admin)   admin app ✗ (needs group engineering)',
  carol: 'wiki ✗ (example-staff needs a verified email; hers is not)   admin app ✗ (no trusted device)'
}

export function banner (demo: Demo): string {
  const store = demo.config.store === undefined ? 'memory store' : 'Redis store'
  const width = Math.max(...DEMO_USERS.map((u) => `${u.username} / ${u.password}`.length))
  const users = DEMO_USERS.map((u) => {
    const who = [u.groups.join(', ') || 'no groups', u.email_verified ? '' : 'email not verified'].filter(Boolean).join('; ')
    return `    ${`${u.username} / ${u.password}`.padEnd(width)}   ${u.email}, ${who}\n${' '.repeat(width + 7)}${EXPECT[u.username] ?? ''}`
  }).join('\n')
  const configFile = relative(process.cwd(), DEMO_CONFIG_FILE) || DEMO_CONFIG_FILE
  const d = demo.device
  return `
  Moatless demo: a zero-trust proxy, an embedded OIDC provider and two apps (${store})

  Open in a browser (Chrome, Firefox and Edge resolve *.localhost to this machine):
    Wiki        ${demo.wikiUrl}/     rules: contractors denied /admin/**, then example.com staff
    Admin app   ${demo.adminAppUrl}/    rule: engineering on a device at level managed
                ${demo.adminTlsUrl}/   the same app over HTTPS, where a browser can show a device

  Sign in as:
${users}

  Device trust (alice's laptop, enrolled at start; trust level known until it reports):
    1. Import ${d.files.deviceP12} into your browser${d.reused ? ' (once: it is kept between runs)' : '\n       (new certificates were made in this run: import it again if you did before)'}
       (password ${d.p12Password}; Chrome: Settings > Privacy and security > Security > Manage certificates).
       The HTTPS certificate is the demo's own: accept the warning, or trust ${d.files.ca}.
    2. Open ${demo.adminTlsUrl}/ as alice: denied, the device has not reported its posture.
    3. Simulated device agent: ${demo.agentUrl}/  (sends a signed posture report), then reload: allowed.
       The real agent reports this machine's own posture instead:
         npx moatless agent report --url ${demo.authUrl} --device-id ${d.id} --key ${d.files.deviceKey}

  Sign out:        any app's /.moatless/sign_out (each demo page links it)
  Demo IdP:        ${demo.idpIssuer}  (discovery: /.well-known/openid-configuration)
  Health/metrics:  ${demo.adminUrl}/healthz   ${demo.adminUrl}/metrics   (HTTPS listener: ${demo.tlsServer.adminUrl}/metrics)
  Config:          ${configFile} (secrets generated at start, nothing saved; certificates in ${d.dir})

  Decision logs follow as JSON lines. Ctrl-C stops everything.

`
}

/** The CLI path: start, print the banner, run until SIGINT/SIGTERM, stop cleanly. */
export async function runDemo (opts: { redis?: string; port?: number; tlsPort?: number; dir?: string }): Promise<void> {
  const logger = createLogger()
  let demo: Demo
  try {
    demo = await startDemo({ ...opts, logger })
  } catch (err) {
    const e = err as Error
    process.stderr.write(`moatless demo: ${e instanceof DemoStartError ? e.message : `failed to start: ${e.message}`}\n`)
    logger.flush()
    process.exitCode = 1
    return
  }
  process.stdout.write(banner(demo))

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (s: NodeJS.Signals): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve(s)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  // A second Ctrl-C now meets Node's default handler and ends the process at once.
  logger.info({ signal }, 'demo: stopping')
  const force = setTimeout(() => {
    process.stderr.write('moatless demo: shutdown timed out; exiting\n')
    process.exit(1)
  }, 10_000)
  force.unref()
  await demo.close()
  logger.info('demo: stopped')
  logger.flush()
}
