import type { IncomingHttpHeaders } from 'node:http'
import { stripOurCookies } from '../authn/cookies.js'
import type { RequestContext } from '../context.js'

/**
 * Client headers that never reach an upstream: ours (any case, `_` for `-`), the forwarded
 * client certificate, and forwarding headers we set ourselves. Node lowercases names.
 */
function isHostileHeader (name: string): boolean {
  const c = name.charCodeAt(0)
  if (c !== 120 /* x */ && c !== 102 /* f */) return false
  const n = name.includes('_') ? name.replace(/_/g, '-') : name
  return n.startsWith('x-moatless-') ||
    n === 'x-client-cert' ||
    n.startsWith('x-forwarded-') ||
    n === 'forwarded' ||
    n === 'x-real-ip' ||
    n === 'x-request-id'
}

export interface AddedHeaders {
  assertion: string | null
}

/**
 * Builds the upstream request headers from the client's (already without the headers the
 * client named in `Connection`, which @fastify/reply-from removes first, so a client cannot
 * use `Connection` to remove ours).
 */
export function upstreamHeaders (headers: IncomingHttpHeaders, ctx: RequestContext, upstreamHost: string, added: AddedHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const name in headers) {
    if (isHostileHeader(name)) continue
    out[name] = headers[name]
  }
  const cookie = headers.cookie
  if (cookie !== undefined) {
    const kept = stripOurCookies(cookie)
    if (kept === undefined) delete out.cookie
    else out.cookie = kept
  }
  // A bearer token we consumed is the user's IdP credential: it does not travel on.
  if (ctx.identity?.via === 'bearer') delete out.authorization
  const app = ctx.app
  out.host = app !== null && app.config.preserve_host ? ctx.host : upstreamHost
  out['x-request-id'] = ctx.id
  out['x-forwarded-for'] = ctx.forwardedFor
  out['x-forwarded-proto'] = ctx.proto
  out['x-forwarded-host'] = ctx.host
  if (added.assertion !== null) out['x-moatless-jwt-assertion'] = added.assertion
  const id = ctx.identity
  if (id !== null && app !== null && app.config.identity_headers) {
    out['x-moatless-user'] = headerSafe(id.sub)
    if (id.email !== undefined) out['x-moatless-email'] = headerSafe(id.email)
    out['x-moatless-groups'] = id.groups.map(headerSafe).filter((g) => !g.includes(',')).join(',')
  }
  return out
}

/** Claim values come from the IdP: never let one carry CR/LF or other controls into a header. */
export function headerSafe (v: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(v) ? v.replace(/[\u0000-\u001f\u007f]/g, '') : v
}
