import type { Socket } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { evaluate, type RuleSet } from '../authz/index.js'
import type { DeviceContext, Identity } from '../context.js'

interface Open {
  socket: Socket
  app: string
  host: string
  method: string
  path: string
  sourceIp: string
  identity: Identity | null
  device: DeviceContext
}

/**
 * Long-lived connections (websockets) that were authorized once at the upgrade. They are
 * decided again whenever something they depended on changes — the session is revoked or
 * updated, the rule set changes — and closed at once when no longer allowed.
 */
export class OpenConnections {
  private readonly open = new Set<Open>()

  constructor (private readonly log: Logger) {}

  get size (): number { return this.open.size }

  add (req: FastifyRequest): void {
    const ctx = req.moatless
    if (ctx.app === null) return
    const entry: Open = {
      socket: req.raw.socket,
      app: ctx.app.name,
      host: ctx.host,
      method: req.raw.method ?? 'GET',
      path: ctx.path,
      sourceIp: ctx.clientIp,
      identity: ctx.identity,
      device: ctx.device
    }
    this.open.add(entry)
    entry.socket.once('close', () => this.open.delete(entry))
  }

  /** Closes every connection made with one of these sessions. */
  closeSessions (ids: ReadonlySet<string>, why: string): void {
    for (const c of this.open) {
      const sid = c.identity?.session_id
      if (sid !== undefined && ids.has(sid)) this.close(c, why)
    }
  }

  /** Connections of these sessions, for re-deciding with fresh identities. */
  ofSessions (ids: ReadonlySet<string>): { sessionId: string; update: (identity: Identity | null) => void }[] {
    const out: { sessionId: string; update: (identity: Identity | null) => void }[] = []
    for (const c of this.open) {
      const sid = c.identity?.session_id
      if (sid !== undefined && ids.has(sid)) out.push({ sessionId: sid, update: (identity) => { c.identity = identity } })
    }
    return out
  }

  /** Connections from these devices, for re-deciding with freshly graded device contexts. */
  ofDevices (ids: ReadonlySet<string>): { deviceId: string; identity: Identity | null; update: (device: DeviceContext) => void }[] {
    const out: { deviceId: string; identity: Identity | null; update: (device: DeviceContext) => void }[] = []
    for (const c of this.open) {
      const id = c.device.id
      if (id !== null && ids.has(id)) out.push({ deviceId: id, identity: c.identity, update: (device) => { c.device = device } })
    }
    return out
  }

  /** Decides every open connection again under `ruleset`; closes what is no longer allowed. */
  reauthorize (ruleset: RuleSet, why: string): void {
    for (const c of this.open) {
      const app = ruleset.lookupHost(c.host.toLowerCase())
      if (app === undefined || app.name !== c.app || !app.config.websockets) { this.close(c, `${why}: app no longer served`); continue }
      if (c.identity === null && !app.isPublicPath(c.path)) { this.close(c, `${why}: no identity`); continue }
      const d = evaluate(app, { identity: c.identity, device: c.device, method: c.method, path: c.path, sourceIp: c.sourceIp })
      if (d.decision !== 'allow') this.close(c, `${why}: ${d.rule}`)
    }
  }

  private close (c: Open, why: string): void {
    this.open.delete(c)
    this.log.info({ app: c.app, path: c.path, user: c.identity?.email ?? c.identity?.sub ?? null, reason: why }, 'closing websocket: no longer allowed')
    c.socket.destroy()
  }

  closeAll (): void {
    for (const c of this.open) c.socket.destroy()
    this.open.clear()
  }
}
