import type { IncomingHttpHeaders } from 'node:http'
import { stripOurCookies } from '../authn/cookies.js'
import type { Identity, RequestContext } from '../context.js'

/**
 * Client headers that never reach an upstream, beyond the `X-Moatless-*` family (any case,
 * `_` for `-`), `X-Forwarded-*` and `X-Client-Cert`. Node lowercases names.
 */
const DROPPED: ReadonlySet<string> = new Set([
  // Forwarding and client-address headers: we set X-Forwarded-* ourselves; the rest name a
  // client address the upstream might believe (Akamai, Cloudflare, Fastly, ...).
  'forwarded', 'x-real-ip', 'x-request-id', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip',
  'cf-connecting-ip', 'fastly-client-ip', 'x-originating-ip', 'x-remote-ip', 'x-remote-addr',
  // Routing overrides: IIS (URL Rewrite), Symfony and Zend route by these instead of the request
  // line (CVE-2018-14773), so `GET /` with `X-Original-URL: /admin` would reach a path no rule
  // was asked about.
  'x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-envoy-original-path', 'x-original-host', 'x-host',
  // Method overrides: Express method-override, Rails, Laravel, Google APIs run the named method,
  // so a GET allowed by `methods: [GET]` would run as DELETE. The decision is on the method of
  // the request line; the override does not travel.
  'x-http-method-override', 'x-http-method', 'x-method-override',
  // Hop-by-hop (RFC 9110 7.6.1): about this connection, never forwarded. undici refuses
  // keep-alive, upgrade, transfer-encoding and expect outright (a 502 for `curl -d` with a body
  // over 1 KiB, which sends `Expect: 100-continue`); Node has answered the 100-continue already.
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'http2-settings', 'expect', 'proxy-authorization'
])

function isHostileHeader (name: string): boolean {
  const n = name.includes('_') ? name.replace(/_/g, '-') : name
  return DROPPED.has(n) || n.startsWith('x-moatless-') || n === 'x-client-cert' || n.startsWith('x-forwarded-')
}

/**
 * The header names a `Connection` header lists (RFC 9110 7.6.1), lowercased: what
 * @fastify/reply-from's `getConnectionHeaders` works out for its own copy, which we no longer
 * read (the function is internal to that package, lib/utils.js, not exported).
 */
function connectionListed (connection: string): string[] {
  const out: string[] = []
  for (const token of connection.split(',')) {
    const t = token.trim().toLowerCase()
    if (t !== '') out.push(t)
  }
  return out
}

/**
 * Builds the upstream request headers from the client's, as Node parsed them (not
 * @fastify/reply-from's copy: that is a second copy, and a dictionary-mode object once it has
 * deleted `Connection`, slow to walk). The headers the client named in `Connection` are
 * hop-by-hop and left out here; ours are added first and never taken from the client, so a
 * client cannot use `Connection` to remove them.
 */
export function upstreamHeaders (headers: IncomingHttpHeaders, ctx: RequestContext, upstreamHost: string): IncomingHttpHeaders {
  // Ours first: a server that keeps only the first N header lines (Node: 2000, and the client
  // can send 2000 short ones) must drop the client's extras, never the assertion, the identity
  // or X-Forwarded-For.
  const app = ctx.app
  const out: IncomingHttpHeaders = {
    host: app !== null && app.config.preserve_host ? ctx.host : upstreamHost,
    'x-request-id': ctx.id,
    'x-forwarded-for': ctx.forwardedFor,
    'x-forwarded-proto': ctx.proto,
    'x-forwarded-host': ctx.host
  }
  if (ctx.assertion !== null) out['x-moatless-jwt-assertion'] = ctx.assertion
  const id = ctx.identity
  if (id !== null && app !== null && app.config.identity_headers) {
    const h = identityHeaders(id)
    if (h.user !== undefined) out['x-moatless-user'] = h.user
    if (h.email !== undefined) out['x-moatless-email'] = h.email
    out['x-moatless-groups'] = h.groups
  }
  // A bearer token we consumed is the user's IdP credential: it does not travel on.
  const bearer = ctx.identity?.via === 'bearer'
  // Browsers send `Connection: keep-alive` on every HTTP/1.1 request; `keep-alive` is dropped anyway.
  const connection = headers.connection
  const listed = typeof connection === 'string' && connection !== 'keep-alive' ? connectionListed(connection) : null
  // Left out while copying, never deleted afterwards: `delete` would turn `out` into a slow
  // dictionary object for undici, which copies and checks every header again.
  for (const name in headers) {
    if (name === 'host' || isHostileHeader(name) || (bearer && name === 'authorization') || (listed !== null && listed.includes(name))) continue
    if (name === 'cookie') {
      const kept = stripOurCookies(headers.cookie as string)
      if (kept !== undefined) out.cookie = kept
      continue
    }
    out[name] = headers[name]
  }
  return out
}

interface IdentityHeaders { user?: string; email?: string; groups: string }

/** Per identity (frozen, and shared by every request of its session or token): worked out once. */
const identityHeaderCache = new WeakMap<Identity, IdentityHeaders>()

function identityHeaders (id: Identity): IdentityHeaders {
  let h = identityHeaderCache.get(id)
  if (h === undefined) {
    h = {
      user: headerSafe(id.sub) ? id.sub : undefined,
      // An email the IdP does not call verified is whatever the user typed in (nOAuth, 2023):
      // an upstream that keys accounts on X-Moatless-Email must not be handed someone else's.
      email: id.email !== undefined && id.email_verified === true && headerSafe(id.email) ? id.email : undefined,
      groups: id.groups.filter((g) => headerSafe(g) && !g.includes(',')).join(',')
    }
    if (Object.isFrozen(id)) identityHeaderCache.set(id, h)
  }
  return h
}

/**
 * Whether a claim value can travel as a header exactly as the IdP wrote it: printable ASCII
 * only. Anything else is left out rather than cleaned up: a cleaned `root@example.com\u0000` or
 * `admins\r` would name someone else, and undici refuses characters above U+00FF outright (a 502
 * on every request of a user with a group named `エンジニア`). The signed assertion carries
 * every value exactly.
 */
export function headerSafe (v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return false
  }
  return true
}
