import type { Logger } from 'pino'
import { buildAdmin } from './admin.js'
import { build, type Moatless } from './app.js'
import type { Config } from './config/schema.js'
import { openStore, type Store } from './store/index.js'

export interface RunningServer {
  moatless: Moatless
  url: string
  adminUrl: string
  close (): Promise<void>
}

export interface StartOptions {
  /** The config's `apps:` as written: seeds an empty store. */
  rawApps?: unknown[]
  /**
   * A store opened by the caller and shared with other instances in this process (the demo's
   * HTTP and HTTPS listeners). The caller closes it; default: the config's store, opened here.
   */
  store?: Store
}

/** Opens the store, builds the proxy and the admin listener, and listens on both. */
export async function startServer (config: Config, logger: Logger, opts: StartOptions = {}): Promise<RunningServer> {
  const ownStore = opts.store === undefined
  const store = opts.store ?? await openStore(config)
  // A shared store is the caller's to explain.
  if (ownStore && store.kind === 'memory') {
    logger.warn('store: in-memory (no `store.redis` configured): sessions live in this process only; run exactly one replica')
  } else if (ownStore && !store.healthy) {
    logger.warn('store: Redis is not reachable yet; requests get 503 until it is')
  }
  let moatless: Moatless | undefined
  let admin: ReturnType<typeof buildAdmin> | undefined
  let url: string
  let adminUrl: string
  try {
    moatless = await build({ config, store, logger, rawApps: opts.rawApps })
    admin = buildAdmin(moatless)
    url = await moatless.app.listen({ host: config.listen.address, port: config.listen.port })
    adminUrl = await admin.listen({ host: config.admin.address, port: config.admin.port })
  } catch (err) {
    // Nothing half-started is left behind (listeners, IdP discovery retries, store connections).
    await moatless?.app.close().catch(() => {})
    await admin?.close().catch(() => {})
    moatless?.idp.close()
    if (ownStore) await store.close()
    throw err
  }
  const m = moatless
  const a = admin
  logger.info({ url, admin: adminUrl, apps: m.state.current.ruleset.apps.map((x) => x.name) }, 'moatless listening')
  let closing: Promise<void> | null = null
  return {
    moatless: m,
    url,
    adminUrl,
    close () {
      closing ??= (async () => {
        await m.app.close()
        await a.close()
        m.idp.close()
        if (ownStore) await store.close()
      })()
      return closing
    }
  }
}
