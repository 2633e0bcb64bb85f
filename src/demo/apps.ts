/**
 * The two upstream apps of `moatless demo`: plain node:http servers on 127.0.0.1, port 0,
 * written the way an app behind Moatless should be. They never take the identity headers on
 * trust alone: every page verifies the `X-Moatless-Jwt-Assertion` JWT (signature against the
 * proxy's JWKS, issuer, audience, expiry) and shows what it proved next to what the headers say.
 *
 *   wiki   pages for every signed-in example.com user, `/static/**` public (its stylesheet),
 *          `/admin/` for everyone but contractors (the proxy's rules decide, not this code)
 *   admin  an "admin console" for engineers on a managed device; published twice by the demo,
 *          http://admin.localhost:PORT (no device can be shown there) and
 *          https://admin.localhost:TLS_PORT (the browser presents the device certificate)
 */
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'

export interface DemoApp {
  name: string
  /** http://127.0.0.1:PORT: the `to` of the app in config/demo.yaml */
  url: string
  close (): Promise<void>
}

export interface DemoApps {
  wiki: DemoApp
  admin: DemoApp
  close (): Promise<void>
}

export interface DemoAppsOptions {
  /** The proxy's public port: the apps' public origins and the JWKS are served there. */
  proxyPort: number
  /** The HTTPS port: the admin app's second origin. */
  tlsPort: number
  /** The assertion's issuer: `authenticate.url`. */
  issuer: string
}

/** Starts both apps; their `from` origins are http://NAME.localhost:proxyPort. */
export async function startDemoApps (opts: DemoAppsOptions): Promise<DemoApps> {
  const wiki = await startApp('wiki', opts, wikiPage)
  let admin: DemoApp
  try {
    admin = await startApp('admin', opts, adminPage)
  } catch (err) {
    await wiki.close()
    throw err
  }
  return { wiki, admin, close: async () => { await Promise.all([wiki.close(), admin.close()]) } }
}

// ---------------------------------------------------------------------------------------------
// Verifying the assertion, as any app behind Moatless should.

type Verified =
  | { status: 'verified'; payload: JWTPayload; kid: string | undefined }
  | { status: 'missing' }
  | { status: 'invalid'; reason: string }

/**
 * Verifies assertions for one app. The JWKS is fetched through the proxy's public listener
 * (`/.well-known/moatless/jwks.json` is served on every app origin), addressed to 127.0.0.1
 * with the app's Host, since Node does not resolve `*.localhost`. Fetched once, again when a
 * token names a key it does not know (the proxy rotated), at most every 30 s.
 */
class AssertionVerifier {
  private keys: JWTVerifyGetKey | null = null
  private fetchedAt = 0
  private readonly audience: string[]
  private readonly host: string

  constructor (private readonly name: string, private readonly opts: DemoAppsOptions) {
    this.host = `${name}.localhost:${opts.proxyPort}`
    // The app's public origins: the assertion names the one the user came through.
    this.audience = name === 'admin' ? [`http://${this.host}`, `https://${name}.localhost:${opts.tlsPort}`] : [`http://${this.host}`]
  }

  async verify (jwt: string | undefined): Promise<Verified> {
    if (jwt === undefined || jwt === '') return { status: 'missing' }
    try {
      let keys = await this.jwks(false)
      try {
        return await this.check(jwt, keys)
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey) || Date.now() - this.fetchedAt < 30_000) throw err
        keys = await this.jwks(true)
        return await this.check(jwt, keys)
      }
    } catch (err) {
      const code = (err as { code?: string }).code
      return { status: 'invalid', reason: code === undefined ? (err as Error).message : `${code}: ${(err as Error).message}` }
    }
  }

  private async check (jwt: string, keys: JWTVerifyGetKey): Promise<Verified> {
    const { payload, protectedHeader } = await jwtVerify(jwt, keys, {
      issuer: this.opts.issuer,
      audience: this.audience,
      algorithms: ['ES256'],
      requiredClaims: ['iat', 'exp', 'sub'],
      maxTokenAge: '5m'
    })
    return { status: 'verified', payload, kid: protectedHeader.kid }
  }

  private async jwks (refresh: boolean): Promise<JWTVerifyGetKey> {
    if (this.keys !== null && !refresh) return this.keys
    const body = await getJson(this.opts.proxyPort, this.host, '/.well-known/moatless/jwks.json')
    this.keys = createLocalJWKSet(body as JSONWebKeySet)
    this.fetchedAt = Date.now()
    return this.keys
  }
}

function getJson (port: number, host: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host, accept: 'application/json' }, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${path} via the proxy answered ${res.statusCode ?? '?'}`))
          return
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
        } catch (err) {
          reject(err as Error)
        }
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path} via the proxy timed out`)))
    req.on('error', reject)
    req.end()
  })
}

// ---------------------------------------------------------------------------------------------
// The servers.

interface PageInput {
  path: string
  proxyPort: number
  tlsPort: number
  headers: IncomingMessage['headers']
  verified: Verified
}

type Render = (input: PageInput) => { status: number; html: string }

async function startApp (name: string, opts: DemoAppsOptions, render: Render): Promise<DemoApp> {
  const verifier = new AssertionVerifier(name, opts)
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('demo app error\n')
      else res.destroy()
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://upstream.invalid').pathname
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n')
      return
    }
    if (name === 'wiki' && path.startsWith('/static/')) {
      // The public path: no sign-in needed, so no assertion either.
      if (path !== '/static/wiki.css') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
        return
      }
      send(res, 200, 'text/css; charset=utf-8', WIKI_CSS, req.method === 'HEAD', 'public, max-age=300')
      return
    }
    const assertion = req.headers['x-moatless-jwt-assertion']
    const verified = await verifier.verify(Array.isArray(assertion) ? assertion[0] : assertion)
    const { status, html } = render({ path, proxyPort: opts.proxyPort, tlsPort: opts.tlsPort, headers: req.headers, verified })
    send(res, status, 'text/html; charset=utf-8', html, req.method === 'HEAD', 'no-store')
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return { name, url: `http://127.0.0.1:${port}`, close: () => closeServer(server) }
}

function send (res: ServerResponse, status: number, type: string, body: string, head: boolean, cache: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': cache })
  res.end(head ? undefined : body)
}

async function closeServer (server: Server): Promise<void> {
  if (!server.listening) return
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}

// ---------------------------------------------------------------------------------------------
// Pages.

function esc (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] as string))
}

function header (headers: IncomingMessage['headers'], name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

function claimValue (name: string, v: unknown): string {
  if ((name === 'iat' || name === 'exp' || name === 'nbf') && typeof v === 'number') {
    return `${v} (${new Date(v * 1000).toISOString().replace('.000', '')})`
  }
  if (Array.isArray(v)) return v.map(String).join(', ')
  if (v === null) return 'null'
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/** What the signed assertion proved, or why it proved nothing. */
function assertionSection (verified: Verified): string {
  if (verified.status === 'missing') {
    return '<section class="card bad"><h2>Signed assertion</h2><p>No <code>X-Moatless-Jwt-Assertion</code>: this request did not come through Moatless. Nothing here can be trusted.</p></section>'
  }
  if (verified.status === 'invalid') {
    return `<section class="card bad"><h2>Signed assertion</h2><p id="assertion-status">✗ The assertion did not verify: ${esc(verified.reason)}</p></section>`
  }
  const order = ['iss', 'aud', 'sub', 'email', 'groups', 'device_id', 'device_trust', 'iat', 'exp']
  const names = [...order.filter((k) => k in verified.payload), ...Object.keys(verified.payload).filter((k) => !order.includes(k))]
  const rows = names.map((k) => `<tr><th>${esc(k)}</th><td>${esc(claimValue(k, verified.payload[k]))}</td></tr>`).join('')
  return `<section class="card good"><h2>Signed assertion</h2>
<p id="assertion-status">✓ Verified: ES256 signature${verified.kid === undefined ? '' : ` (key <code>${esc(verified.kid)}</code>)`} checked against the proxy's <code>/.well-known/moatless/jwks.json</code>; issuer, audience and expiry checked.</p>
<table id="claims">${rows}</table></section>`
}

function identityHeadersSection (headers: IncomingMessage['headers']): string {
  const rows = ['x-moatless-user', 'x-moatless-email', 'x-moatless-groups']
    .map((h) => `<tr><th>${esc(h.replace(/(^|-)(\w)/g, (_m, d: string, c: string) => d + c.toUpperCase()))}</th><td>${esc(header(headers, h) ?? '—')}</td></tr>`)
    .join('')
  return `<section class="card"><h2>Who Moatless says you are</h2><p class="muted">The identity headers (<code>identity_headers: true</code>). Convenient, but only as trustworthy as the network path: the assertion below is what proves them.</p><table id="identity">${rows}</table></section>`
}

function shell (title: string, css: string, nav: string, inner: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title>${css}</head>
<body><header class="top"><span class="brand">${esc(title)}</span><nav>${nav}</nav></header><main>${inner}</main></body></html>`
}

function wikiPage (p: PageInput): { status: number; html: string } {
  const admin = `https://admin.localhost:${p.tlsPort}/`
  const nav = `<a href="/">Wiki home</a><a href="/admin/">Wiki admin</a><a href="${esc(admin)}">Admin app</a><a id="sign-out" href="/.moatless/sign_out">Sign out</a>`
  const who = p.verified.status === 'verified' ? String(p.verified.payload.email ?? p.verified.payload.sub) : 'stranger'
  const inAdmin = p.path === '/admin' || p.path.startsWith('/admin/')
  const intro = inAdmin
    ? `<h1>Wiki administration</h1><p>Hello <strong>${esc(who)}</strong>. You are on <code>/admin/</code>: Moatless let you in because rule <code>no-contractors-in-admin</code> did not match you. Contractors get a 403 here, and this app never sees their request.</p>`
    : `<h1>Welcome, ${esc(who)}</h1><p>You are reading <code>${esc(p.path)}</code> of the Acme wiki. Moatless let you in by rule <code>example-staff</code> (a verified <code>@example.com</code> email). Try <a href="/admin/">the wiki's admin pages</a> and <a href="${esc(admin)}">the admin app</a>: what you may open depends on your groups, and for the admin app on your device too.</p>`
  const html = shell('Acme Wiki', '<link rel="stylesheet" href="/static/wiki.css">', nav,
    `${intro}<div class="grid">${identityHeadersSection(p.headers)}${assertionSection(p.verified)}</div>
<p class="muted">This page is served by a plain Node.js app on 127.0.0.1 behind Moatless; its stylesheet comes from <code>/static/**</code>, a public path.</p>`)
  return { status: p.verified.status === 'verified' ? 200 : 401, html }
}

function adminPage (p: PageInput): { status: number; html: string } {
  const wiki = `http://wiki.localhost:${p.proxyPort}/`
  const nav = `<a href="${esc(wiki)}">Wiki</a><a id="sign-out" href="/.moatless/sign_out">Sign out</a>`
  const who = p.verified.status === 'verified' ? String(p.verified.payload.email ?? p.verified.payload.sub) : 'stranger'
  const html = shell('Admin console', `<style>${ADMIN_CSS}</style>`, nav,
    `<h1>Admin console</h1><p>Hello <strong>${esc(who)}</strong>. Only the <code>engineering</code> group on a device at trust level <code>managed</code> gets here (rule <code>engineers-on-managed-devices</code>); everyone else is stopped at the proxy with an explanation. The assertion below names the device (<code>device_id</code>, <code>device_trust</code>).</p>
<div class="grid">${assertionSection(p.verified)}</div>`)
  return { status: p.verified.status === 'verified' ? 200 : 401, html }
}

const BASE_CSS = `*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937}
header.top{display:flex;align-items:center;justify-content:space-between;padding:.8rem 2rem;color:#fff}
.brand{font-weight:700;font-size:1.1rem}nav a{color:#fff;margin-left:1.2rem;text-decoration:none;opacity:.9}nav a:hover{opacity:1;text-decoration:underline}
main{max-width:60rem;margin:2rem auto;padding:0 2rem}h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.05rem;margin:0 0 .6rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem;margin:1.2rem 0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:1rem 1.2rem;box-shadow:0 1px 2px #0000000d}
.card.good{border-top:4px solid #16a34a}.card.bad{border-top:4px solid #dc2626}
table{border-collapse:collapse;width:100%;font-size:.9rem}th{text-align:left;color:#4b5563;font-weight:600;padding:.25rem .8rem .25rem 0;white-space:nowrap;vertical-align:top}
td{padding:.25rem 0;word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.82rem}
code{background:#f3f4f6;padding:.05rem .3rem;border-radius:4px;font-size:.85em}.muted{color:#6b7280;font-size:.85rem}`

const WIKI_CSS = `${BASE_CSS}
body{background:#f6f7fb}header.top{background:#3730a3}`

const ADMIN_CSS = `${BASE_CSS}
body{background:#fbf7f4}header.top{background:#9a3412}`
