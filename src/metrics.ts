import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Prometheus metrics, one registry per proxy instance (served on the admin listener only). */
export class Metrics {
  readonly registry = new Registry()
  readonly requests: Counter<'app' | 'decision' | 'status'>
  readonly decisionSeconds: Histogram<'decision'>
  readonly upstreamSeconds: Histogram<'app'>

  constructor () {
    collectDefaultMetrics({ register: this.registry, prefix: 'moatless_process_' })
    this.requests = new Counter({
      name: 'moatless_requests_total',
      help: 'Requests by app, decision and response status',
      labelNames: ['app', 'decision', 'status'] as const,
      registers: [this.registry]
    })
    this.decisionSeconds = new Histogram({
      name: 'moatless_decision_duration_seconds',
      help: 'Time from receiving a request to its authorization decision',
      labelNames: ['decision'] as const,
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
      registers: [this.registry]
    })
    this.upstreamSeconds = new Histogram({
      name: 'moatless_upstream_duration_seconds',
      help: 'Time from forwarding a request to the end of the upstream response',
      labelNames: ['app'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry]
    })
  }
}
