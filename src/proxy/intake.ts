import { BlockList, isIP } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { NO_DEVICE, addStage, type RequestContext, type StateHolder } from '../context.js'
import { sendJson, sendPage, escapeHtml } from '../pages.js'
import { normalizeRequestTarget } from './normalize-path.js'

export interface IntakeOptions {
  state: StateHolder
  /** The authenticate origin's host (lowercase, default port dropped). */
  authHost: string
  /** Scheme of the public listener. */
  listenerProto: 'http' | 'https'
  trustedProxies: BlockList
}

export function trustedProxyList (cidrs: string[]): BlockList {
  const list = new BlockList()
  for (const c of cidrs) {
    const [addr, bits] = c.split('/') as [string, string | undefined]
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(addr, family)
    else list.addSubnet(addr, Number(bits), family)
  }
  return list
}

const PEER_TRUSTED = Symbol('moatless.peerTrusted')

function isTrusted (list: BlockList, ip: string): boolean {
  const v = isIP(ip)
  if (v === 0) return false
  if (v === 6 && ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return list.check(ip.slice(7), 'ipv4')
  return list.check(ip, v === 6 ? 'ipv6' : 'ipv4')
}

function plainIp (ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip
}

/** SPEC: from a trusted proxy, the client is the right-most address that is not itself trusted. */
export function clientAddress (peer: string, xff: string | undefined, trusted: BlockList, peerTrusted?: boolean): { client: string; forwardedFor: string } {
  const p = plainIp(peer)
  if (xff === undefined || (peerTrusted !== undefined ? !peerTrusted : !isTrusted(trusted, peer))) return { client: p, forwardedFor: p }
  const chain = xff.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  let client = p
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i] as string
    if (isIP(hop) === 0) break
    client = plainIp(hop)
    if (!isTrusted(trusted, hop)) break
  }
  return { client, forwardedFor: chain.length > 0 ? `${chain.join(', ')}, ${p}` : p }
}

function badRequest (req: FastifyRequest, reply: FastifyReply, reason: string): FastifyReply {
  req.moatless.decision = { decision: 'deny', rule: 'bad-request', reasons: [reason] }
  if (req.moatless.wantsHtml) return sendPage(reply, 400, 'Bad request', `<p>The request was malformed (${escapeHtml(reason)}) and was not forwarded.</p>`)
  return sendJson(reply, 400, { error: 'bad_request', reason, request_id: req.id })
}

/**
 * Stage 1: who is asking for what. Routes the request to an app by its Host (404 for unknown
 * hosts), normalizes the path (400 for every ambiguous form), and works out the client
 * address and scheme. Nothing later looks at the raw URL or at forwarding headers again.
 */
export const intake = fp(async function intake (fastify: FastifyInstance, opts: IntakeOptions) {
  fastify.decorateRequest('moatless', null as unknown as RequestContext)

  addStage(fastify, (req, reply) => {
    const raw = req.raw
    const headers = raw.headers
    const accept = headers.accept
    const ctx: RequestContext = {
      id: req.id,
      startedAt: performance.now(),
      site: 'app',
      internal: req.routeOptions.config.moatless?.internal ?? null,
      app: null,
      path: '/',
      search: '',
      host: '',
      clientIp: '',
      peerTrusted: false,
      proto: opts.listenerProto,
      forwardedFor: '',
      wantsHtml: (raw.method === 'GET' || raw.method === 'HEAD') && accept !== undefined && accept.includes('text/html'),
      identity: null,
      device: NO_DEVICE,
      decision: null,
      unavailable: false,
      websocket: headers.upgrade !== undefined && headers.upgrade.toLowerCase() === 'websocket',
      assertion: null,
      forwardedAt: 0,
      logged: false
    }
    req.moatless = ctx

    // Two Host headers: which one did the router, the rules and the upstream see? Refuse.
    const rh = raw.rawHeaders
    let hosts = 0
    for (let i = 0; i < rh.length; i += 2) {
      const n = rh[i] as string
      if (n.length === 4 && n.toLowerCase() === 'host') hosts++
    }
    if (hosts !== 1) return badRequest(req, reply, hosts === 0 ? 'missing-host' : 'duplicate-host')
    // Only websocket upgrades are proxied (and authorized at the upgrade); `Upgrade: h2c` and
    // friends would otherwise pass as a plain request and tunnel past the rules upstream.
    if (headers.upgrade !== undefined && !ctx.websocket && /(^|,)\s*upgrade\s*(,|$)/i.test(headers.connection ?? '')) return badRequest(req, reply, 'unsupported-upgrade')

    // RFC 9110 7.4 / 15.5.20: a TLS connection is for the server name the client asked for. A
    // request for another host on it (a connection reused, or a front domain) is misdirected:
    // whatever the handshake established (a client certificate: the device) was for that name.
    const sni = (raw.socket as Partial<TLSSocket>).encrypted === true ? (raw.socket as TLSSocket).servername : undefined
    if (typeof sni === 'string' && sni !== '' && sni.toLowerCase() !== hostnameOf(headers.host ?? '')) return misdirected(req, reply)

    // The peer of a keep-alive connection does not change: decide its trust once per socket.
    const sock = raw.socket as typeof raw.socket & { [PEER_TRUSTED]?: boolean }
    let trusted = sock[PEER_TRUSTED]
    if (trusted === undefined) {
      trusted = isTrusted(opts.trustedProxies, sock.remoteAddress ?? '')
      sock[PEER_TRUSTED] = trusted
    }
    ctx.peerTrusted = trusted
    const { client, forwardedFor } = clientAddress(sock.remoteAddress ?? '', headers['x-forwarded-for'] as string | undefined, opts.trustedProxies, trusted)
    ctx.clientIp = client
    ctx.forwardedFor = forwardedFor
    if (opts.listenerProto === 'http' && headers['x-forwarded-proto'] === 'https' && ctx.peerTrusted) {
      ctx.proto = 'https'
    }

    const target = normalizeRequestTarget(raw.url ?? '')
    if (!target.ok) {
      // Log what was refused (path only: a query string may hold secrets), bounded.
      const rawTarget = raw.url ?? ''
      const q = rawTarget.indexOf('?')
      ctx.path = (q === -1 ? rawTarget : rawTarget.slice(0, q)).slice(0, 256)
      return badRequest(req, reply, target.reason)
    }
    ctx.path = target.path
    ctx.search = target.search
    // From here on, everything (router internals, rules, forwarding) sees the normalized target.
    raw.url = target.path + target.search

    const host = (headers.host ?? '').toLowerCase()
    ctx.host = headers.host ?? ''
    const internal = ctx.internal
    if (host === opts.authHost) {
      ctx.site = 'auth'
      if (internal === 'auth' || internal === 'any') return
      return notFound(req, reply)
    }
    const app = opts.state.current.ruleset.lookupHost(host)
    if (app === undefined) return notFound(req, reply)
    ctx.app = app
    if (internal === 'app' || internal === 'any') return
    // The whole /.moatless/ namespace is ours: an unknown endpoint is a 404, never forwarded.
    if (target.path.startsWith('/.moatless/') || target.path === '/.moatless' || target.path.startsWith('/.well-known/moatless/')) {
      return notFound(req, reply)
    }
  })
}, { name: 'moatless-intake', fastify: '5.x' })

/** The host name of a Host header value: lowercase, without port, IPv6 brackets kept. */
function hostnameOf (host: string): string {
  const h = host.toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    return end === -1 ? h : h.slice(0, end + 1)
  }
  const colon = h.indexOf(':')
  const name = colon === -1 ? h : h.slice(0, colon)
  return name.endsWith('.') ? name.slice(0, -1) : name
}

function misdirected (req: FastifyRequest, reply: FastifyReply): FastifyReply {
  req.moatless.decision = { decision: 'deny', rule: 'misdirected', reasons: ['the TLS server name (SNI) differs from the Host header'] }
  if (req.moatless.wantsHtml) {
    return sendPage(reply, 421, 'Misdirected request', '<p>This connection was opened for a different host name than the one requested. Open the address again in a new tab.</p>')
  }
  return sendJson(reply, 421, { error: 'misdirected_request', request_id: req.id })
}

function notFound (req: FastifyRequest, reply: FastifyReply): FastifyReply {
  req.moatless.decision = { decision: 'deny', rule: 'unknown-host', reasons: ['no app is configured for this host'] }
  if (req.moatless.wantsHtml) return sendPage(reply, 404, 'Not found', '<p>No application is published at this address.</p>')
  return sendJson(reply, 404, { error: 'not_found', request_id: req.id })
}
