/**
 * The store as CLI commands use it: the one that the config's replicas share. A command that
 * changes or reads shared state refuses the memory store (it lives inside one `serve`
 * process, out of reach of any other process), and gives up quickly, with a clear message,
 * when Redis does not answer.
 */
import { formatErrors, type LoadedConfig } from '../config/index.js'
import type { StoreConfig } from '../config/schema.js'
import type { RuleSet } from '../authz/index.js'
import type { Store } from '../store/index.js'
import { checkConfig } from './load.js'
import { CliError } from './output.js'

export const STORE_CONNECT_TIMEOUT_MS = 3000

/** The config and its rules, or a CliError carrying every `FILE:LINE:COL message` line. */
export function loadChecked (file: string): { loaded: LoadedConfig; ruleset: RuleSet } {
  const r = checkConfig(file)
  if (!r.ok) throw new CliError(formatErrors(r.errors))
  return r
}

/** Opens the config's Redis store, runs `fn` on it and closes it again, whatever happens. */
export async function withStore<T> (loaded: LoadedConfig, command: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const cfg = loaded.config.store
  if (cfg === undefined) {
    throw new CliError(`moatless ${command}: ${loaded.file} has no store.redis; this command needs store.redis ` +
      '(the memory store lives inside a single serve process, out of reach of this command)')
  }
  // Loaded here, not at the top: ioredis is a fifth of the start-up time of commands without a store (check, explain).
  const { openStore } = await import('../store/index.js')
  const store = await openStore(loaded.config, { connectTimeoutMs: STORE_CONNECT_TIMEOUT_MS })
  try {
    if (!store.healthy) {
      throw new CliError(`moatless ${command}: cannot reach Redis at ${describeRedis(cfg.redis)} ` +
        `(store.redis in ${loaded.file}) within ${STORE_CONNECT_TIMEOUT_MS / 1000} s`)
    }
    return await fn(store)
  } finally {
    await store.close()
  }
}

/** Where the store is, for messages: never the password. */
export function describeRedis (redis: StoreConfig['redis']): string {
  if (typeof redis === 'string') {
    try {
      const u = new URL(redis)
      if (u.password !== '') u.password = '***'
      return u.toString()
    } catch {
      return 'the configured address'
    }
  }
  const nodes = (list: { host: string; port: number }[]): string => list.map((n) => `${n.host}:${n.port}`).join(',')
  if ('sentinels' in redis) return `sentinels ${nodes(redis.sentinels)} (master ${redis.name})`
  return `cluster ${nodes(redis.cluster)}`
}
