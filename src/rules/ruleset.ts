import { createHash } from 'node:crypto'
import { z } from 'zod'
import { compileRuleSet, type RuleSet } from '../authz/index.js'
import { formatDuration } from '../config/duration.js'
import { App, type AppConfig } from '../config/schema.js'

/** What is stored for a rule set: the `apps:` list as written (after `${VAR}` substitution). */
export interface StoredRuleSet { apps: unknown[]; applied_at: number; source: string }

function canonical (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}

/** The version id is the content hash of the apps: applying the same rules twice is one version. */
export function ruleSetVersion (apps: unknown[]): string {
  return createHash('sha256').update(canonical(apps)).digest('hex').slice(0, 16)
}

/**
 * Parsed apps back in the form they are written in (durations as text), so that a rule set
 * seeded from an already-parsed config validates again when read back.
 */
export function appsAsWritten (apps: readonly AppConfig[]): unknown[] {
  return apps.map((app) => ({
    ...app,
    timeout: formatDuration(app.timeout),
    ...(app.session_max_age === undefined ? {} : { session_max_age: formatDuration(app.session_max_age) })
  }))
}

export function encodeRuleSet (apps: unknown[], source: string): { version: string; body: string } {
  const body: StoredRuleSet = { apps, applied_at: Date.now(), source }
  return { version: ruleSetVersion(apps), body: JSON.stringify(body) }
}

export type Decoded =
  | { ok: true; ruleset: RuleSet; stored: StoredRuleSet }
  | { ok: false; errors: string[] }

/** Validates and compiles a stored rule set against this replica's device trust levels. */
export function decodeRuleSet (body: string, levels: string[]): Decoded {
  let stored: StoredRuleSet
  try { stored = JSON.parse(body) as StoredRuleSet } catch { return { ok: false, errors: ['stored rule set is not JSON'] } }
  const parsed = z.array(App).safeParse(stored.apps)
  if (!parsed.success) return { ok: false, errors: parsed.error.issues.map((i) => `apps.${i.path.join('.')}: ${i.message}`) }
  const compiled = compileRuleSet(parsed.data, levels)
  if (!compiled.ok) return { ok: false, errors: compiled.errors.map((e) => `${e.path.join('.')}: ${e.message}`) }
  return { ok: true, ruleset: compiled.ruleset, stored }
}

/** One recent decision as replicas sample it (capped Redis stream), for `rules apply --dry-run`. */
export interface DecisionSample {
  /** ms since epoch */
  t: number
  replica: string
  app: string
  method: string
  path: string
  source_ip: string
  identity: { sub: string; email?: string; email_verified?: boolean; groups: string[]; claims: Record<string, unknown>; via: 'session' | 'bearer' } | null
  device: { id: string | null; trust: string; trustRank: number }
  decision: 'allow' | 'deny' | 'unauthenticated'
  rule: string
}
