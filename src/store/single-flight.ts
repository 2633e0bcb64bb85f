/**
 * Concurrent reads of one key share one store round trip: when a cached entry expires under
 * load, every request in flight for it would otherwise ask the store at the same moment (with
 * 32 connections on one session: 32 GETs, and 32 activity writes after them).
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>()

  /** The pending read of `key` if there is one, else `read()`, shared until it settles. */
  run (key: string, read: () => Promise<T>): Promise<T> {
    const pending = this.inflight.get(key)
    if (pending !== undefined) return pending
    const p = read().finally(() => { this.inflight.delete(key) })
    this.inflight.set(key, p)
    return p
  }
}
