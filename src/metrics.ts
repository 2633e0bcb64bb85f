import { Registry, collectDefaultMetrics, type Metric } from 'prom-client'

/** Prometheus metrics, one registry per proxy instance (served on the admin listener only). */
export class Metrics {
  readonly registry = new Registry()
  /** moatless_requests_total{app,decision,status} */
  readonly requests: RequestCounter
  /** moatless_decision_duration_seconds{decision} */
  readonly decisionSeconds: HistogramBy
  /** moatless_upstream_duration_seconds{app} */
  readonly upstreamSeconds: HistogramBy

  constructor () {
    collectDefaultMetrics({ register: this.registry, prefix: 'moatless_process_' })
    this.requests = new RequestCounter(this.registry)
    this.decisionSeconds = new HistogramBy(this.registry, {
      name: 'moatless_decision_duration_seconds',
      help: 'Time from receiving a request to its authorization decision',
      labelName: 'decision',
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1]
    })
    this.upstreamSeconds = new HistogramBy(this.registry, {
      name: 'moatless_upstream_duration_seconds',
      help: 'Time from forwarding a request to the end of the upstream response',
      labelName: 'app',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    })
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics written on every request.
//
// prom-client's own Counter and Histogram take a labels object on every `inc`/`observe`,
// check it, build a key string from it and look that string up (a histogram also turns the
// bucket bound into a property name): about 4,000 instructions and some garbage per call,
// three calls per request. These keep a series per label value in Maps keyed by the values
// themselves, so counting is a lookup and an addition. prom-client still does all the
// formatting: each is registered as a metric whose `get()` answers in prom-client's own
// shape, so /metrics reads exactly as it did with prom-client's classes.

type Labels = Record<string, string>
interface MetricValue { value: number; metricName?: string; exemplar?: null; labels: Record<string, string | number> }

/**
 * What prom-client's Registry asks of a metric: `name`, `help`, `type`, and `get()` answering
 * in the shape prom-client's own metrics answer in. Series are listed in the order they first
 * appeared, as prom-client lists them.
 */
abstract class Collector<S extends { labels: Labels }> {
  readonly aggregator = 'sum'
  protected series: S[] = []

  constructor (registry: Registry | undefined, readonly name: string, readonly help: string, readonly type: 'counter' | 'histogram') {
    registry?.registerMetric(this as unknown as Metric)
  }

  async get (): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    const values = this.series.flatMap((s) => this.values(s))
    // Keys in the order prom-client's own classes give them (getMetricsAsJSON shows it).
    return this.type === 'counter'
      ? { help: this.help, name: this.name, type: this.type, values, aggregator: this.aggregator }
      : { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset (): void { this.series = [] }

  protected abstract values (s: S): MetricValue[]
}

interface CounterSeries { labels: Labels; value: number }

/** A counter's series, as prom-client's Counter lists them. */
abstract class CounterCollector extends Collector<CounterSeries> {
  constructor (registry: Registry | undefined, name: string, help: string) { super(registry, name, help, 'counter') }
  protected values (s: CounterSeries): MetricValue[] { return [{ value: s.value, labels: { ...s.labels } }] }
}

/** moatless_requests_total, by app, decision and status. */
export class RequestCounter extends CounterCollector {
  private byApp = new Map<string, Map<string, Map<number, CounterSeries>>>()

  constructor (registry: Registry) {
    super(registry, 'moatless_requests_total', 'Requests by app, decision and response status')
  }

  inc (app: string, decision: string, status: number): void {
    let byDecision = this.byApp.get(app)
    if (byDecision === undefined) { byDecision = new Map(); this.byApp.set(app, byDecision) }
    let byStatus = byDecision.get(decision)
    if (byStatus === undefined) { byStatus = new Map(); byDecision.set(decision, byStatus) }
    const s = byStatus.get(status)
    if (s !== undefined) { s.value++; return }
    const fresh = { labels: { app, decision, status: String(status) }, value: 1 }
    byStatus.set(status, fresh)
    this.series.push(fresh)
  }

  override reset (): void { super.reset(); this.byApp = new Map() }
}

/** A counter with one label that takes few values (a trust level). */
export class CounterBy extends CounterCollector {
  private byValue = new Map<string, CounterSeries>()
  private readonly labelName: string

  constructor (registry: Registry | undefined, opts: { name: string; help: string; labelName: string }) {
    super(registry, opts.name, opts.help)
    this.labelName = opts.labelName
  }

  inc (labelValue: string): void {
    const s = this.byValue.get(labelValue)
    if (s !== undefined) { s.value++; return }
    const fresh = { labels: { [this.labelName]: labelValue }, value: 1 }
    this.byValue.set(labelValue, fresh)
    this.series.push(fresh)
  }

  override reset (): void { super.reset(); this.byValue = new Map() }
}

interface HistogramSeries { labels: Labels; counts: Float64Array; sum: number; count: number }

/** A histogram with one label. */
export class HistogramBy extends Collector<HistogramSeries> {
  private byValue = new Map<string, HistogramSeries>()
  private readonly labelName: string
  private readonly buckets: readonly number[]

  constructor (registry: Registry, opts: { name: string; help: string; labelName: string; buckets: number[] }) {
    super(registry, opts.name, opts.help, 'histogram')
    this.labelName = opts.labelName
    this.buckets = [...opts.buckets].sort((a, b) => a - b)
  }

  observe (labelValue: string, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`)
    let s = this.byValue.get(labelValue)
    if (s === undefined) {
      s = { labels: { [this.labelName]: labelValue }, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }
      this.byValue.set(labelValue, s)
      this.series.push(s)
    }
    // The first bucket whose bound is not below the value; above all of them, only +Inf counts it.
    const b = this.buckets
    let i = 0
    while (i < b.length && value > (b[i] as number)) i++
    if (i < b.length) s.counts[i] = (s.counts[i] ?? 0) + 1
    s.sum += value
    s.count++
  }

  override reset (): void { super.reset(); this.byValue = new Map() }

  /** As prom-client's Histogram: cumulative `_bucket`s (`le` first), `+Inf`, `_sum`, `_count`. */
  protected values (s: HistogramSeries): MetricValue[] {
    const out: MetricValue[] = []
    let acc = 0
    this.buckets.forEach((le, i) => {
      acc += s.counts[i] as number
      out.push({ value: acc, metricName: `${this.name}_bucket`, exemplar: null, labels: { le, ...s.labels } })
    })
    out.push({ value: s.count, metricName: `${this.name}_bucket`, exemplar: null, labels: { le: '+Inf', ...s.labels } })
    out.push({ value: s.sum, metricName: `${this.name}_sum`, labels: { ...s.labels } })
    out.push({ value: s.count, metricName: `${this.name}_count`, labels: { ...s.labels } })
    return out
  }
}
