import type { FastifyRequest } from 'fastify'
import type { Decision, DeviceContext, Identity } from '../context.js'
import type { DecisionSample } from '../rules/ruleset.js'
import type { Store } from '../store/index.js'

/**
 * At most this many decisions per interval (1 s) per replica. The dry run replays 1,000 by
 * default (the store keeps 10,000), so at 50 a second that is the last 20 s of a busy replica
 * (the store's 10,000 the last 200 s). Every sample is serialized and written, twice JSON-encoded
 * on Redis: at 2,000 a second, 40 % of a busy replica's requests paid for that. A sample also
 * lives until its flush, so it outlives a minor GC: at 500 req/s, each scavenge promoted 87–91 KB
 * with 200 a second, 35–36 KB with 50 and 17 KB with no sampling (NOTES-hot-path.md, tenth
 * round).
 */
export const MAX_PER_INTERVAL = 50

/**
 * Samples serialized per turn of the event loop at a flush. A batch of 200 (the cap before) took
 * 0.9–1.5 ms in one piece (and more with a GC in it): once a second, every request that arrived
 * meanwhile waited for it, which lands in the latency tail. 25 at a time is ~0.15 ms.
 */
const SERIALIZED_PER_TURN = 25

/**
 * A decision as it was taken. Identities and devices are immutable and shared, so keeping
 * references is enough: the sample is built and serialized at flush time, off the request path.
 */
interface Taken {
  t: number
  app: string
  method: string
  path: string
  sourceIp: string
  identity: Identity | null
  device: DeviceContext
  decision: Decision
}

/**
 * Samples decisions for `moatless rules apply --dry-run`: kept in memory and written to the
 * store's capped stream in one batch per interval, never on the request path.
 */
export class DecisionSampler {
  private buffer: Taken[] = []
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
    if (this.buffer.length >= MAX_PER_INTERVAL) return
    this.buffer.push({ t: Date.now(), app: ctx.app.name, method: req.raw.method ?? 'GET', path: ctx.path, sourceIp: ctx.clientIp, identity: ctx.identity, device: ctx.device, decision: d })
  }

  async flush (): Promise<void> {
    if (this.buffer.length === 0 || !this.store.healthy) return
    const batch = this.buffer
    this.buffer = []
    const lines: string[] = []
    for (let i = 0; i < batch.length; i++) {
      // Requests that came in meanwhile go first.
      if (i > 0 && i % SERIALIZED_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve))
      lines.push(JSON.stringify(this.sample(batch[i] as Taken)))
    }
    await this.store.addDecisionSamples(lines).catch(() => {})
  }

  private sample (b: Taken): DecisionSample {
    const id = b.identity
    return {
      t: b.t,
      replica: this.replica,
      app: b.app,
      method: b.method,
      path: b.path,
      source_ip: b.sourceIp,
      identity: id === null ? null : { sub: id.sub, email: id.email, email_verified: id.email_verified, groups: id.groups, claims: id.claims, via: id.via },
      device: { id: b.device.id, trust: b.device.trust, trustRank: b.device.trustRank },
      decision: b.decision.decision,
      rule: b.decision.rule
    }
  }

  close (): void { clearInterval(this.timer) }
}
