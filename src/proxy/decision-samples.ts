import type { FastifyRequest } from 'fastify'
import type { DecisionSample } from '../rules/ruleset.js'
import type { Store } from '../store/index.js'

const MAX_BUFFER = 2000

/**
 * Samples decisions for `moatless rules apply --dry-run`: kept in memory and written to the
 * store's capped stream in one batch per interval, never on the request path.
 */
export class DecisionSampler {
  private buffer: DecisionSample[] = []
  private readonly timer: NodeJS.Timeout

  constructor (private readonly store: Store, private readonly replica: string, intervalMs = 1000) {
    this.timer = setInterval(() => { void this.flush() }, intervalMs)
    this.timer.unref()
  }

  add (req: FastifyRequest): void {
    const ctx = req.moatless
    const d = ctx.decision
    if (ctx.app === null || d === null) return
    if (d.rule === 'bad-request' || d.rule === 'unknown-host' || d.rule === 'store-unavailable') return
    if (this.buffer.length >= MAX_BUFFER) return
    const id = ctx.identity
    const sample: DecisionSample = {
      t: Date.now(),
      replica: this.replica,
      app: ctx.app.name,
      method: req.raw.method ?? 'GET',
      path: ctx.path,
      source_ip: ctx.clientIp,
      identity: id === null ? null : { sub: id.sub, email: id.email, email_verified: id.email_verified, groups: id.groups, claims: id.claims, via: id.via },
      device: { id: ctx.device.id, trust: ctx.device.trust, trustRank: ctx.device.trustRank },
      decision: d.decision,
      rule: d.rule
    }
    // Serialized at flush time, off the request path.
    this.buffer.push(sample)
  }

  async flush (): Promise<void> {
    if (this.buffer.length === 0 || !this.store.healthy) return
    const batch = this.buffer
    this.buffer = []
    await this.store.addDecisionSamples(batch.map((b) => JSON.stringify(b))).catch(() => {})
  }

  close (): void { clearInterval(this.timer) }
}
