import type { Logger } from 'pino'
import type { RuleSet } from '../authz/index.js'
import type { Store } from '../store/index.js'
import { decodeRuleSet, encodeRuleSet } from './ruleset.js'

export interface RuleSyncOptions {
  store: Store
  log: Logger
  levels: string[]
  /** The `apps:` of the replica's own config, as written: seeds an empty store. */
  configApps: unknown[]
  swap: (ruleset: RuleSet, version: string) => void
  /** Safety net for a missed pub/sub message. */
  pollMs?: number
}

/**
 * Keeps this replica on the store's active rule set: seeds the store from the config when it
 * has none, then follows `rules-changed` events (and polls, so a missed message heals).
 * New sets are compiled here, off the request path, and swapped in whole.
 */
export class RuleSync {
  private current: string | null = null
  private timer: NodeJS.Timeout | null = null
  private loading: Promise<void> | null = null

  constructor (private readonly o: RuleSyncOptions) {}

  get version (): string | null { return this.current }

  async start (): Promise<void> {
    const { store } = this.o
    this.o.store.onEvent((e) => { if (e.type === 'rules-changed' && e.version !== this.current) void this.refresh() })
    this.o.store.onRecover(() => { void this.refresh() })
    try {
      if (await store.activeRuleSetVersion() === null) {
        const { version, body } = encodeRuleSet(this.o.configApps, 'serve --config (seed)')
        if (await store.seedRuleSet(version, body)) this.o.log.info({ version }, 'rules: store had no rule set; seeded it from the config')
      }
      await this.refresh()
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'rules: store unreachable at start; serving the config\'s rules until it answers')
    }
    const every = this.o.pollMs ?? 5000
    if (every > 0) {
      this.timer = setInterval(() => { if (store.healthy) void this.refresh() }, every)
      this.timer.unref()
    }
  }

  /** Loads the active set if it differs from the one in use. */
  refresh (): Promise<void> {
    this.loading ??= this.load().finally(() => { this.loading = null })
    return this.loading
  }

  private async load (): Promise<void> {
    const { store, log } = this.o
    let version: string | null
    try { version = await store.activeRuleSetVersion() } catch { return }
    if (version === null || version === this.current) return
    const body = await store.getRuleSet(version).catch(() => null)
    if (body === null) return
    const decoded = decodeRuleSet(body, this.o.levels)
    if (!decoded.ok) {
      log.error({ version, errors: decoded.errors }, 'rules: the active rule set does not compile here; keeping the current one')
      this.current = version
      return
    }
    this.o.swap(decoded.ruleset, version)
    const previous = this.current
    this.current = version
    log.info({ version, previous, apps: decoded.ruleset.apps.length }, 'rules: switched to rule set')
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
  }
}
