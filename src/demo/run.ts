/**
 * `moatless demo`: the whole thing in one process, no Docker, no Redis. The embedded OIDC
 * provider with its demo users, the two demo apps (apps.ts), and the proxy running
 * config/demo.yaml, with secrets generated at start.
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
import { createLogger } from '../log.js'
import { startServer, type RunningServer } from '../server.js'
import { startDemoApps, type DemoApps } from './apps.js'
import { DEMO_USERS, startIdp, type StartedIdp } from './idp.js'

/** config/demo.yaml, found from src/demo/ (tsx) and dist/demo/ (built) alike. */
export const DEMO_CONFIG_FILE = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url))

export interface DemoOptions {
  /** Public port. Default 8080. */
  port?: number
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
  /** The embedded IdP's issuer, http://localhost:IDP_PORT */
  idpIssuer: string
  /** The admin listener: /healthz, /readyz, /metrics. */
  adminUrl: string
  config: Config
  server: RunningServer
  close (): Promise<void>
}

export class DemoStartError extends Error {
  readonly code = 'MOATLESS_ERR_DEMO_START'
}

/** Starts the IdP, the demo apps and the proxy. Nothing prints; the caller owns the handle. */
export async function startDemo (opts: DemoOptions = {}): Promise<Demo> {
  const port = opts.port ?? 8080
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DemoStartError(`--port must be a TCP port (1-65535); got ${String(port)}`)
  const logger = opts.logger ?? createLogger()
  const authUrl = `http://auth.localhost:${port}`
  const clientSecret = randomBytes(32).toString('base64url')
  const sessionSecret = randomBytes(48).toString('base64url')

  const cleanup: Array<() => Promise<void>> = []
  const unwind = async (): Promise<void> => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {})
  }
  try {
    const idp: StartedIdp = await startIdp({
      clients: [{
        client_id: 'moatless-demo',
        client_secret: clientSecret,
        redirect_uris: [`${authUrl}/.moatless/callback`],
        post_logout_redirect_uris: [`${authUrl}/.moatless/signed_out`]
      }]
    })
    cleanup.push(() => idp.close())

    const apps: DemoApps = await startDemoApps({ proxyPort: port, issuer: authUrl })
    cleanup.push(() => apps.close())

    const config = demoConfig({
      DEMO_PORT: String(port),
      DEMO_IDP_ISSUER: idp.issuer,
      DEMO_WIKI_UPSTREAM: apps.wiki.url,
      DEMO_ADMIN_UPSTREAM: apps.admin.url,
      DEMO_CLIENT_SECRET: clientSecret,
      DEMO_SESSION_SECRET: sessionSecret
    }, opts.redis)

    let server: RunningServer
    try {
      server = await startServer(config, logger)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new DemoStartError(`port ${port} is already in use; pick another with --port (npm run demo -- --port 8081)`, { cause: err })
      }
      throw err
    }
    cleanup.push(() => server.close())
    // The IdP is up already; wait for discovery so the first click signs in at once.
    await server.moatless.idp.get()

    let closing: Promise<void> | null = null
    return {
      port,
      authUrl,
      wikiUrl: `http://wiki.localhost:${port}`,
      adminAppUrl: `http://admin.localhost:${port}`,
      idpIssuer: idp.issuer,
      adminUrl: server.adminUrl,
      config,
      server,
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

/** config/demo.yaml with the demo's values, plus a `store:` section for --redis. */
function demoConfig (env: Record<string, string>, redis: string | undefined): Config {
  let text = readFileSync(DEMO_CONFIG_FILE, 'utf8')
  if (redis !== undefined) {
    const doc = parseDocument(text)
    doc.set('store', { redis, key_prefix: 'moatless-demo:' })
    text = doc.toString()
  }
  const r = loadConfigText(text, DEMO_CONFIG_FILE, env)
  if (!r.ok) throw new DemoStartError(`the demo config does not load:\n${formatErrors(r.errors)}`)
  return r.loaded.config
}

/** What each demo user meets, in the banner. */
const EXPECT: Record<string, string> = {
  alice: 'wiki ✓   wiki /admin/ ✓   admin app ✓',
  bob: 'wiki ✓   wiki /admin/ ✗ (no-contractors-in-admin)   admin app ✗ (needs group engineering)',
  carol: 'wiki ✗ (example-staff needs a verified email; hers is not)   admin app ✓'
}

export function banner (demo: Demo): string {
  const store = demo.config.store === undefined ? 'memory store' : 'Redis store'
  const width = Math.max(...DEMO_USERS.map((u) => `${u.username} / ${u.password}`.length))
  const users = DEMO_USERS.map((u) => {
    const who = [u.groups.join(', ') || 'no groups', u.email_verified ? '' : 'email not verified'].filter(Boolean).join('; ')
    return `    ${`${u.username} / ${u.password}`.padEnd(width)}   ${u.email}, ${who}\n${' '.repeat(width + 7)}${EXPECT[u.username] ?? ''}`
  }).join('\n')
  const configFile = relative(process.cwd(), DEMO_CONFIG_FILE) || DEMO_CONFIG_FILE
  return `
  Moatless demo: a zero-trust proxy, an embedded OIDC provider and two apps (${store})

  Open in a browser (Chrome, Firefox and Edge resolve *.localhost to this machine):
    Wiki        ${demo.wikiUrl}/     rules: contractors denied /admin/**, then example.com staff
    Admin app   ${demo.adminAppUrl}/    rule: group engineering only

  Sign in as:
${users}

  Sign out:        any app's /.moatless/sign_out (each demo page links it)
  Demo IdP:        ${demo.idpIssuer}  (discovery: /.well-known/openid-configuration)
  Health/metrics:  ${demo.adminUrl}/healthz   ${demo.adminUrl}/metrics
  Config:          ${configFile} (secrets generated at start, nothing saved)

  Decision logs follow as JSON lines. Ctrl-C stops everything.

`
}

/** The CLI path: start, print the banner, run until SIGINT/SIGTERM, stop cleanly. */
export async function runDemo (opts: { redis?: string; port?: number }): Promise<void> {
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
