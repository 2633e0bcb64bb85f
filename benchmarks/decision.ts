/**
 * The decision alone, as a micro-benchmark: host lookup + rule evaluation against rule sets of
 * 10 to 10,000 apps, and session lookup from the in-process cache with 100 to 100,000 live
 * sessions. Flat numbers across sizes mean per-request cost does not grow with the deployment.
 */
import { compileRuleSet, evaluate } from '../src/authz/index.js'
import { Sessions } from '../src/authn/sessions.js'
import { Sealer } from '../src/authn/seal.js'
import { App, type AppConfig } from '../src/config/schema.js'
import { NO_DEVICE, type Identity } from '../src/context.js'
import { MemoryStore } from '../src/store/index.js'

function apps (n: number): AppConfig[] {
  const out: AppConfig[] = []
  for (let i = 0; i < n; i++) {
    out.push(App.parse({
      name: `app-${i}`,
      from: `https://app-${i}.example.com`,
      to: 'http://127.0.0.1:9000',
      public_paths: ['/static/**'],
      rules: [
        { name: 'no-contractors-in-admin', deny: { groups: ['contractors'], paths: ['/admin/**'] } },
        { name: 'engineers', allow: { groups: ['engineering'], methods: ['GET', 'POST'] } },
        { name: 'staff-read', allow: { domains: ['example.com'], methods: ['GET', 'HEAD'] } }
      ]
    }))
  }
  return out
}

function time (iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) fn(i)
  const start = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) fn(i)
  return Number(process.hrtime.bigint() - start) / iterations
}

export async function decisionMicrobench (): Promise<{ case: string; ns_per_op: number }[]> {
  const out: { case: string; ns_per_op: number }[] = []
  const identity: Identity = Object.freeze({ sub: 'u', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: {}, via: 'session' })
  for (const n of [10, 100, 1000, 10_000]) {
    const compiled = compileRuleSet(apps(n), [])
    if (!compiled.ok) throw new Error('compile failed')
    const rs = compiled.ruleset
    const hosts = Array.from({ length: 64 }, (_, i) => `app-${(i * 7919) % n}.example.com`)
    let allowed = 0
    const ns = time(200_000, (i) => {
      const app = rs.lookupHost(hosts[i & 63] as string)
      if (app !== undefined && evaluate(app, { identity, device: NO_DEVICE, method: 'GET', path: '/docs/page', sourceIp: '10.0.0.1' }).decision === 'allow') allowed++
    })
    if (allowed === 0) throw new Error('nothing allowed: benchmark is wrong')
    out.push({ case: `decide (lookupHost + evaluate), ${n} apps`, ns_per_op: Math.round(ns) })
  }
  const sealer = new Sealer('bench-session-secret-0123456789abcdef-0123456789', 'cookie')
  const cookie = sealer.seal({ s: 'x'.repeat(43), o: 'https://wiki.example.com' })
  out.push({ case: 'unseal session cookie (AES-256-GCM)', ns_per_op: Math.round(time(100_000, () => { sealer.unseal(cookie) })) })
  for (const n of [100, 10_000, 100_000]) {
    const store = new MemoryStore()
    const sessions = new Sessions(store, { lifetimeMs: 3_600_000, idleMs: 3_600_000, outageGraceMs: 30_000 }, 200_000)
    const ids: string[] = []
    for (let i = 0; i < n; i++) {
      const s = await sessions.create({ sub: `u${i}`, email: `u${i}@example.com`, email_verified: true, groups: ['engineering'], claims: {}, tokens: '' })
      ids.push(s.id)
      await sessions.lookup(s.id)
    }
    const rssMb = Math.round(process.memoryUsage().rss / 2 ** 20)
    const iterations = 200_000
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) await sessions.lookup(ids[(i * 7919) % n] as string)
    const ns = Number(process.hrtime.bigint() - start) / iterations
    out.push({ case: `session lookup (cached), ${n} live sessions (RSS ${rssMb} MiB)`, ns_per_op: Math.round(ns) })
    await store.close()
  }
  return out
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await decisionMicrobench()) console.log(`${r.case}: ${r.ns_per_op} ns/op`)
}
