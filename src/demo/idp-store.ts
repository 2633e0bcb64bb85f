/**
 * In-memory storage for the demo IdP's oidc-provider models (sessions, grants, codes, tokens).
 *
 * oidc-provider ships a memory adapter of its own, but using it prints a "you MUST change it"
 * warning at every start, and its storage is module-global: two IdPs in one test process would
 * share it. This one is per IdP and can also drop an account's sessions (`disableUser`).
 */

/** The payload oidc-provider hands to an adapter; only the fields this store indexes are named. */
export interface StoredPayload {
  [key: string]: unknown
  accountId?: string
  grantId?: string
  uid?: string
  userCode?: string
  consumed?: number
}

interface Entry {
  payload: StoredPayload
  /** ms since epoch; Infinity when oidc-provider gave no expiry. */
  expiresAt: number
}

/** The adapter interface oidc-provider expects, one instance per model name. */
export interface ProviderAdapter {
  upsert(id: string, payload: StoredPayload, expiresIn?: number): Promise<void>
  find(id: string): Promise<StoredPayload | undefined>
  findByUid(uid: string): Promise<StoredPayload | undefined>
  findByUserCode(userCode: string): Promise<StoredPayload | undefined>
  consume(id: string): Promise<void>
  destroy(id: string): Promise<void>
  revokeByGrantId(grantId: string): Promise<void>
}

export class IdpStore {
  readonly #entries = new Map<string, Entry>()
  /** grantId → keys of the tokens issued under it, so revoking a grant revokes them. */
  readonly #byGrant = new Map<string, Set<string>>()
  /** Session uid → session id. */
  readonly #sessionByUid = new Map<string, string>()
  readonly #byUserCode = new Map<string, string>()
  /** Allowance for clock skew, as oidc-provider's own adapter keeps expired entries that long. */
  readonly #graceMs: number

  constructor(clockToleranceSeconds = 0) {
    this.#graceMs = clockToleranceSeconds * 1000
  }

  /** The factory to pass as oidc-provider's `adapter` option. */
  adapterFactory(): (model: string) => ProviderAdapter {
    return (model: string) => this.#adapterFor(model)
  }

  /** Ends every IdP session of the account, so its next sign-in has to show the login form. */
  destroySessionsOf(accountId: string): void {
    for (const [key, entry] of this.#entries) {
      if (key.startsWith('Session:') && entry.payload.accountId === accountId) this.#delete(key)
    }
  }

  #get(key: string): StoredPayload | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#delete(key)
      return undefined
    }
    return entry.payload
  }

  #delete(key: string): void {
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    this.#entries.delete(key)
    const { grantId, uid, userCode } = entry.payload
    if (grantId !== undefined) this.#byGrant.get(grantId)?.delete(key)
    if (uid !== undefined && this.#sessionByUid.get(uid) === idOf(key)) this.#sessionByUid.delete(uid)
    if (userCode !== undefined && this.#byUserCode.get(userCode) === key) this.#byUserCode.delete(userCode)
  }

  #adapterFor(model: string): ProviderAdapter {
    const keyOf = (id: string): string => `${model}:${id}`
    return {
      upsert: async (id, payload, expiresIn) => {
        const key = keyOf(id)
        this.#delete(key)
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 + this.#graceMs : Infinity
        this.#entries.set(key, { payload, expiresAt })
        if (payload.grantId !== undefined) {
          let members = this.#byGrant.get(payload.grantId)
          if (members === undefined) this.#byGrant.set(payload.grantId, (members = new Set()))
          members.add(key)
        }
        if (model === 'Session' && payload.uid !== undefined) this.#sessionByUid.set(payload.uid, id)
        if (payload.userCode !== undefined) this.#byUserCode.set(payload.userCode, key)
      },
      find: async (id) => this.#get(keyOf(id)),
      findByUid: async (uid) => {
        const id = this.#sessionByUid.get(uid)
        return id === undefined ? undefined : this.#get(keyOf(id))
      },
      findByUserCode: async (userCode) => {
        const key = this.#byUserCode.get(userCode)
        return key === undefined ? undefined : this.#get(key)
      },
      consume: async (id) => {
        const payload = this.#get(keyOf(id))
        if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000)
      },
      destroy: async (id) => this.#delete(keyOf(id)),
      revokeByGrantId: async (grantId) => {
        for (const key of this.#byGrant.get(grantId) ?? []) this.#delete(key)
        this.#byGrant.delete(grantId)
      },
    }
  }
}

function idOf(key: string): string {
  return key.slice(key.indexOf(':') + 1)
}
