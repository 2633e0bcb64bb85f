/**
 * A whole Moatless in one call, from real parts: the embedded OIDC provider, real upstream
 * servers, and the proxy built from YAML through the real config loader, listening on a
 * free port. Logs are captured as parsed JSON lines.
 */
import { Writable } from 'node:stream'
import { stringify } from 'yaml'
import { build, type Moatless } from '../../src/app.js'
import { buildAdmin } from '../../src/admin.js'
import { loadConfigText, formatErrors, type Config } from '../../src/config/index.js'
import { createLogger } from '../../src/log.js'
import { openStore } from '../../src/store/index.js'
import { startIdp, type StartedIdp } from '../../src/demo/idp.js'
import { Browser } from './browser.js'
import { signInAtIdp } from './idp-login.js'
import { freePort } from './ports.js'
import { startUpstream, type Upstream } from './upstream.js'
import type { FastifyInstance } from 'fastify'

export const CLIENT_SECRET = 'test-client-secret-0123456789abcdef'
export const SESSION_SECRET = 'test-session-secret-0123456789abcdef-0123456789'

export interface StackOptions {
  /** app name → app YAML (without from/to, filled in; `to` defaults to the shared upstream). */
  apps: Record<string, Record<string, unknown>>
  redisUrl?: string
  /** Deep-merged over the generated config object. */
  config?: Record<string, unknown>
  idp?: StartedIdp
  port?: number
  rulesPollMs?: number
  /** Serve the public listener over TLS with these PEM files (paths). */
  tls?: { cert: string; key: string }
}

export interface Stack {
  port: number
  authUrl: string
  idp: StartedIdp
  upstream: Upstream
  moatless: Moatless
  admin: FastifyInstance
  adminUrl: string
  config: Config
  logs: Record<string, unknown>[]
  /** Captured raw log text (for secret-leak checks). */
  logText (): string
  origin (app: string): string
  close (): Promise<void>
}

function merge (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k]
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && cur !== null && typeof cur === 'object' && !Array.isArray(cur)
      ? merge(cur as Record<string, unknown>, v as Record<string, unknown>)
      : v
  }
  return out
}

/**
 * The port must be known before the config is written (origins name it), so it is picked with
 * freePort() and only listened on a moment later, after the IdP and the upstream started; on a
 * busy machine another process can take it in between. Then the stack is started again on
 * another port (when the caller chose neither the port nor an IdP whose redirect URIs name it).
 */
export async function startStack (opts: StackOptions): Promise<Stack> {
  const retry = opts.port === undefined && opts.idp === undefined
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOn(opts.port ?? await freePort(), opts)
    } catch (err) {
      if (!retry || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    }
  }
}

async function startStackOn (port: number, opts: StackOptions): Promise<Stack> {
  const scheme = opts.tls === undefined ? 'http' : 'https'
  const authUrl = `${scheme}://auth.localhost:${port}`
  const ownIdp = opts.idp === undefined
  const idp = opts.idp ?? await startIdp({
    clients: [{
      client_id: 'moatless',
      client_secret: CLIENT_SECRET,
      redirect_uris: [`${authUrl}/.moatless/callback`],
      post_logout_redirect_uris: [`${authUrl}/.moatless/signed_out`]
    }]
  })
  const upstream = await startUpstream()
  const apps = Object.entries(opts.apps).map(([name, app]) => ({
    name,
    from: `${scheme}://${name}.localhost:${port}`,
    to: upstream.url,
    ...app
  }))
  let doc: Record<string, unknown> = {
    listen: { address: '127.0.0.1', port, ...(opts.tls === undefined ? {} : { tls: opts.tls }) },
    admin: { address: '127.0.0.1', port: 0 },
    authenticate: { url: authUrl },
    idp: { issuer: idp.issuer, client_id: 'moatless', client_secret: '${TEST_CLIENT_SECRET}', scopes: ['openid', 'email', 'profile', 'offline_access'] },
    session: { secret: '${TEST_SESSION_SECRET}', lifetime: '12h', idle_timeout: '2h' },
    apps
  }
  if (opts.redisUrl !== undefined) doc.store = { redis: opts.redisUrl, key_prefix: `t${port}:` }
  if (opts.config !== undefined) doc = merge(doc, opts.config)
  const loaded = loadConfigText(stringify(doc), 'test.yaml', { TEST_CLIENT_SECRET: CLIENT_SECRET, TEST_SESSION_SECRET: SESSION_SECRET })
  if (!loaded.ok) throw new Error('test config invalid:\n' + formatErrors(loaded.errors))
  const config = loaded.loaded.config

  const logs: Record<string, unknown>[] = []
  let text = ''
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      const s = chunk.toString()
      text += s
      for (const line of s.split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    }
  })
  const logger = createLogger({ destination: sink, level: 'info' })
  const store = await openStore(config)
  const raw = loaded.loaded.raw.apps
  const moatless = await build({ config, store, logger, rawApps: Array.isArray(raw) ? raw : [], rulesPollMs: opts.rulesPollMs })
  await moatless.idp.get()
  try {
    await moatless.app.listen({ host: '127.0.0.1', port })
  } catch (err) {
    await moatless.app.close()
    moatless.idp.close()
    await store.close()
    await upstream.close()
    if (ownIdp) await idp.close()
    throw err
  }
  const admin = buildAdmin(moatless)
  const adminUrl = await admin.listen({ host: '127.0.0.1', port: 0 })
  return {
    port,
    authUrl,
    idp,
    upstream,
    moatless,
    admin,
    adminUrl,
    config,
    logs,
    logText: () => text,
    origin: (app) => `${scheme}://${app}.localhost:${port}`,
    async close () {
      await moatless.app.close()
      await admin.close()
      moatless.idp.close()
      await store.close()
      await upstream.close()
      if (ownIdp) await idp.close()
    }
  }
}

export const HTML = { accept: 'text/html,application/xhtml+xml' }

/**
 * Signs `user` in the way a browser does: open the app URL, get sent to sign-in, on to the
 * IdP, post the form, back through the callback and the handoff to the app. Returns the
 * final response (the app's page) and the redirect chain.
 */
export async function browserSignIn (browser: Browser, stack: Stack, url: string, user: string, password = `${user}-password`): Promise<{ final: Awaited<ReturnType<Browser['request']>>; chain: string[] }> {
  const chain: string[] = []
  let res = await browser.request(url, { headers: HTML })
  chain.push(`${res.status} ${url}`)
  let next = res.headers.location as string | undefined
  const idpOrigin = new URL(stack.idp.issuer).origin
  for (let i = 0; i < 20 && next !== undefined; i++) {
    const target = new URL(next, res.url).href
    if (new URL(target).origin === idpOrigin) {
      // Follow to the interaction page, then sign in there.
      const atIdp = await browser.follow(target, { headers: HTML }, 20, { stopBefore: (u: URL) => u.origin !== idpOrigin })
      const page = atIdp.final
      chain.push(`${page.status} ${page.url}`)
      if (page.status >= 300 && page.status < 400) {
        // The IdP still has a session: it sends the browser straight back.
        next = new URL(page.headers.location as string, page.url).href
        continue
      }
      const left = await signInAtIdp(browser, page.url, user, password)
      next = left.url
      continue
    }
    res = await browser.request(target, { headers: HTML })
    chain.push(`${res.status} ${target}`)
    next = res.status >= 300 && res.status < 400 ? res.headers.location as string | undefined : undefined
  }
  return { final: res, chain }
}
