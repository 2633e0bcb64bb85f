import type { Config } from '../config/schema.js'
import { MemoryStore } from './memory.js'
import { RedisStore } from './redis.js'
import type { Store } from './store.js'

export * from './store.js'
export { MemoryStore } from './memory.js'
export { RedisStore } from './redis.js'
export { SingleFlight } from './single-flight.js'
export { CredentialCache, ownCopy, type CredentialEntry } from './credential-cache.js'

/** The store named by the config: Redis when `store.redis` is set, else memory. */
export async function openStore (config: Config, opts: { connectTimeoutMs?: number } = {}): Promise<Store> {
  if (config.store === undefined) return new MemoryStore()
  const store = new RedisStore(config.store)
  await store.connect(opts.connectTimeoutMs)
  return store
}
