/**
 * A small cookie-keeping HTTP client for driving sign-in flows the way a browser would, across
 * several host names (wiki.localhost, auth.localhost, localhost, ...) without DNS: every host
 * name connects to `resolveTo` while the URL, Host header, TLS SNI and cookie rules keep the
 * name. Cookies follow RFC 6265 (with the RFC 6265bis Secure and prefix rules).
 *
 * It sends exactly the headers it is given, plus Cookie; no Accept, no User-Agent defaults, so a
 * test decides whether it looks like a browser navigation or an API call. No JavaScript runs:
 * auto-submitting forms are submitted by the test (see idp-login.ts).
 */
import type { LookupAddress } from 'node:dns'
import { isIP } from 'node:net'

import { Agent, request as undiciRequest } from 'undici'

export interface BrowserOptions {
  /** Address every host name connects to. Default 127.0.0.1. */
  resolveTo?: string
  /** PEM CA bundle trusted for https (instead of the system roots). */
  ca?: string
  /** PEM client certificate and key presented when a TLS server asks (device identity). */
  cert?: string
  key?: string
}

export interface RequestInit {
  method?: string
  headers?: Record<string, string>
  body?: string
}

export interface BrowserResponse {
  status: number
  /** Lower-case names. `set-cookie`, when present, is always a string[]. */
  headers: Record<string, string | string[]>
  body: string
  /** The URL that was requested. */
  url: string
}

export interface FollowOptions {
  /** Return instead of following a redirect to this URL (e.g. a callback nothing listens on). */
  stopBefore?: (next: URL) => boolean
}

export interface Hop {
  url: string
  status: number
  location?: string
}

export interface StoredCookie {
  name: string
  value: string
  domain: string
  hostOnly: boolean
  path: string
  secure: boolean
  httpOnly: boolean
  sameSite?: string
  /** ms since epoch; undefined for a session cookie. */
  expires?: number
  creation: number
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/** A `lookup` for net/tls/http/ws options that sends every host name to one address. */
export function fixedLookup(address: string): (hostname: string, options: { all?: boolean }, callback: LookupCallback) => void {
  const family = isIP(address)
  if (family === 0) throw new Error(`resolveTo must be an IP address, got ${address}`)
  return (_hostname, options, callback) => {
    if (options.all === true) callback(null, [{ address, family }])
    else callback(null, address, family)
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

export class Browser {
  /** Pass to `ws` / `http.request` options to reach the same place as the browser does. */
  readonly lookup: ReturnType<typeof fixedLookup>
  readonly #agent: Agent
  #jar: StoredCookie[] = []
  #clock = 0

  constructor(opts: BrowserOptions = {}) {
    this.lookup = fixedLookup(opts.resolveTo ?? '127.0.0.1')
    this.#agent = new Agent({
      connect: {
        lookup: this.lookup,
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        ...(opts.cert === undefined ? {} : { cert: opts.cert }),
        ...(opts.key === undefined ? {} : { key: opts.key }),
      },
    })
  }

  /** One request, no redirect following. Set-Cookie is stored; matching cookies are sent. */
  async request(url: string, init: RequestInit = {}): Promise<BrowserResponse> {
    const target = new URL(url)
    const headers: Record<string, string> = { ...init.headers }
    const cookie = this.cookieHeader(target.href)
    if (cookie !== '') {
      const given = Object.keys(headers).find((k) => k.toLowerCase() === 'cookie')
      if (given === undefined) headers.cookie = cookie
      else headers[given] = `${headers[given]}; ${cookie}`
    }
    const res = await undiciRequest(target, {
      dispatcher: this.#agent,
      method: (init.method ?? 'GET') as 'GET',
      headers,
      ...(init.body === undefined ? {} : { body: init.body }),
    })
    const body = await res.body.text()
    const out: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue
      out[name] = name === 'set-cookie' ? (Array.isArray(value) ? value : [value]) : value
    }
    for (const line of (out['set-cookie'] as string[] | undefined) ?? []) this.setCookie(target.href, line)
    return { status: res.statusCode, headers: out, body, url: target.href }
  }

  /**
   * Follows redirects across hosts like a browser: GET (without body) after 303, and after
   * 301/302 of a POST; 307/308 keep method and body. Authorization is dropped when the origin
   * changes. `chain` has every response, the final one included. With `stopBefore`, a redirect
   * to a URL it accepts is not followed: `final` is then that redirect response.
   */
  async follow(
    url: string,
    init: RequestInit = {},
    max = 20,
    opts: FollowOptions = {},
  ): Promise<{ final: BrowserResponse; chain: Hop[] }> {
    const chain: Hop[] = []
    let current = url
    let method = init.method ?? 'GET'
    let body = init.body
    let headers: Record<string, string> = { ...init.headers }
    for (let i = 0; i <= max; i++) {
      const res = await this.request(current, { method, headers, ...(body === undefined ? {} : { body }) })
      const location = typeof res.headers.location === 'string' ? res.headers.location : undefined
      chain.push({ url: current, status: res.status, ...(location === undefined ? {} : { location }) })
      if (!REDIRECTS.has(res.status) || location === undefined) return { final: res, chain }
      const next = new URL(location, current)
      if (opts.stopBefore?.(next) === true) return { final: res, chain }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET'
        body = undefined
        headers = withoutHeaders(headers, ['content-type', 'content-length'])
      }
      if (next.origin !== new URL(current).origin) headers = withoutHeaders(headers, ['authorization'])
      current = next.href
    }
    throw new Error(`more than ${max} redirects, last at ${current}: ${chain.map((h) => `${h.status} ${h.url}`).join(' -> ')}`)
  }

  /** The cookies that would be sent to `url`, in sending order. */
  cookies(url: string): { name: string; value: string }[] {
    return this.#matching(new URL(url)).map(({ name, value }) => ({ name, value }))
  }

  /** The Cookie header value for `url` ('' when none), e.g. for a websocket client. */
  cookieHeader(url: string): string {
    return this.#matching(new URL(url))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ')
  }

  /** Every stored (unexpired) cookie with its attributes. */
  storedCookies(): StoredCookie[] {
    const now = Date.now()
    this.#jar = this.#jar.filter((c) => c.expires === undefined || c.expires > now)
    return this.#jar.map((c) => ({ ...c }))
  }

  /** Stores a Set-Cookie header value as if `url` had sent it. Ignored when the rules reject it. */
  setCookie(url: string, setCookieHeader: string): void {
    const from = new URL(url)
    const parsed = parseSetCookie(setCookieHeader)
    if (parsed === undefined) return
    const host = hostOf(from)
    const secureOrigin = from.protocol === 'https:' || from.protocol === 'wss:'

    let domain = host
    let hostOnly = true
    if (parsed.domain !== undefined && parsed.domain !== '') {
      if (!domainMatch(host, parsed.domain)) return
      domain = parsed.domain
      hostOnly = false
    }
    const path = parsed.path !== undefined && parsed.path.startsWith('/') ? parsed.path : defaultPath(from.pathname)

    if (parsed.secure && !secureOrigin) return
    const lower = parsed.name.toLowerCase()
    if (lower.startsWith('__secure-') && !(parsed.secure && secureOrigin)) return
    if (lower.startsWith('__host-') && !(parsed.secure && secureOrigin && hostOnly && parsed.path === '/')) return
    // An insecure origin may not shadow or overwrite a Secure cookie (RFC 6265bis 5.7 step 14).
    if (
      !secureOrigin &&
      this.#jar.some(
        (c) => c.secure && c.name === parsed.name && (domainMatch(c.domain, domain) || domainMatch(domain, c.domain)) && pathMatch(path, c.path),
      )
    ) {
      return
    }

    const index = this.#jar.findIndex((c) => c.name === parsed.name && c.domain === domain && c.path === path)
    const old = index === -1 ? undefined : this.#jar[index]
    if (index !== -1) this.#jar.splice(index, 1)
    if (parsed.expires !== undefined && parsed.expires <= Date.now()) return

    this.#jar.push({
      name: parsed.name,
      value: parsed.value,
      domain,
      hostOnly,
      path,
      secure: parsed.secure,
      httpOnly: parsed.httpOnly,
      ...(parsed.sameSite === undefined ? {} : { sameSite: parsed.sameSite }),
      ...(parsed.expires === undefined ? {} : { expires: parsed.expires }),
      creation: old?.creation ?? ++this.#clock,
    })
  }

  clearCookies(): void {
    this.#jar = []
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.#agent.destroy()
  }

  #matching(url: URL): StoredCookie[] {
    const host = hostOf(url)
    const secure = url.protocol === 'https:' || url.protocol === 'wss:'
    const now = Date.now()
    this.#jar = this.#jar.filter((c) => c.expires === undefined || c.expires > now)
    return this.#jar
      .filter((c) => (c.hostOnly ? c.domain === host : domainMatch(host, c.domain)))
      .filter((c) => pathMatch(url.pathname || '/', c.path))
      .filter((c) => secure || !c.secure)
      .sort((a, b) => b.path.length - a.path.length || a.creation - b.creation)
  }
}

interface ParsedSetCookie {
  name: string
  value: string
  domain?: string
  path?: string
  secure: boolean
  httpOnly: boolean
  sameSite?: string
  expires?: number
}

/** RFC 6265 5.2. Returns undefined for a line the user agent must ignore. */
export function parseSetCookie(line: string): ParsedSetCookie | undefined {
  const [pair = '', ...attributes] = line.split(';')
  const eq = pair.indexOf('=')
  if (eq === -1) return undefined
  const name = pair.slice(0, eq).trim()
  const value = pair.slice(eq + 1).trim()
  if (name === '') return undefined
  const out: ParsedSetCookie = { name, value, secure: false, httpOnly: false }
  let maxAge: number | undefined
  let expires: number | undefined
  for (const attribute of attributes) {
    const i = attribute.indexOf('=')
    const key = (i === -1 ? attribute : attribute.slice(0, i)).trim().toLowerCase()
    const val = i === -1 ? '' : attribute.slice(i + 1).trim()
    switch (key) {
      case 'expires': {
        const t = Date.parse(val)
        if (!Number.isNaN(t)) expires = t
        break
      }
      case 'max-age':
        if (/^-?\d+$/.test(val)) {
          const seconds = Number(val)
          maxAge = seconds <= 0 ? 0 : Date.now() + seconds * 1000
        }
        break
      case 'domain':
        out.domain = val.replace(/^\./, '').toLowerCase()
        break
      case 'path':
        out.path = val
        break
      case 'secure':
        out.secure = true
        break
      case 'httponly':
        out.httpOnly = true
        break
      case 'samesite':
        out.sameSite = val
        break
    }
  }
  // Max-Age wins over Expires; Max-Age <= 0 means "already expired".
  const expiry = maxAge ?? expires
  if (expiry !== undefined) out.expires = expiry
  return out
}

function hostOf(url: URL): string {
  return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1')
}

function domainMatch(host: string, domain: string): boolean {
  if (host === domain) return true
  return isIP(host) === 0 && host.endsWith(`.${domain}`)
}

function pathMatch(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
}

function defaultPath(uriPath: string): string {
  if (!uriPath.startsWith('/')) return '/'
  const last = uriPath.lastIndexOf('/')
  return last <= 0 ? '/' : uriPath.slice(0, last)
}

function withoutHeaders(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k.toLowerCase())))
}
