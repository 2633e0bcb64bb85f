/**
 * Compiles the `apps:` of a config into a RuleSet: everything a request needs, built once,
 * frozen, and swapped as a whole when the rules change (`rules apply`). All errors are
 * collected, each with its path into the config document, so `moatless check` can point
 * at the line of the offending key.
 */
import type { AppConfig } from '../config/schema.js'
import type { Decision } from '../context.js'
import { compileCondition } from './condition.js'
import { compileGlobList } from './glob.js'
import type { CompileContext, CompileError, Criterion, DecisionInput } from './types.js'

export type { CompileError } from './types.js'

export interface CompiledRule {
  readonly name: string
  readonly effect: 'allow' | 'deny'
  /** Position in the app's `rules:`. */
  readonly index: number
  readonly condition: Criterion
  /** `condition.test`, held on the rule itself: one object fewer to read per rule tested. */
  readonly test: (input: DecisionInput) => boolean
  /** For an allow rule, the decision it makes, made once (frozen): an allowed request allocates none. */
  readonly allowed: Decision | null
}

/** An allow rule: always carries its decision. */
export interface AllowRule extends CompiledRule {
  readonly effect: 'allow'
  readonly allowed: Decision
}

export interface CompiledApp {
  readonly name: string
  /** Exactly as configured (the assertion's audience). */
  readonly from: string
  /** new URL(from).origin */
  readonly origin: string
  /** new URL(from).host: lowercase, default port dropped. */
  readonly host: string
  readonly to: string
  readonly config: AppConfig
  isPublicPath (path: string): boolean
  /** In config order. */
  readonly rules: CompiledRule[]
  /** The rules of each effect, in config order (what evaluate walks). */
  readonly denyRules: CompiledRule[]
  readonly allowRules: AllowRule[]
}

export interface RuleSet {
  readonly apps: CompiledApp[]
  /** Keyed by `CompiledApp.host`. Frozen: set/delete/clear throw. */
  readonly byHost: Map<string, CompiledApp>
  /** ['none', ...configured level names lowest first]; the index is the rank. */
  readonly levels: string[]
  /** The app for a raw Host header value, or undefined (also for anything malformed). */
  lookupHost (hostHeader: string): CompiledApp | undefined
}

export type CompileResult = { ok: true; ruleset: RuleSet } | { ok: false; errors: CompileError[] }

/** Names a decision can carry without a rule: a rule may not take them. */
const RESERVED_RULE_NAMES = new Set(['public-path', 'default-deny', 'authentication-required'])

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' }

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** Why `from` is not a bare origin, if it is not. */
function fromProblem (from: string, url: URL | undefined): string | undefined {
  if (url === undefined) return `from: "${from}" is not a URL`
  if (DEFAULT_PORT[url.protocol] === undefined) return `from: "${from}" must be an http:// or https:// origin`
  if (url.username !== '' || url.password !== '') return `from: "${from}" must not contain credentials`
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || from.includes('?') || from.includes('#')) {
    return `from: "${from}" must be an origin (scheme://host[:port]) without a path or query`
  }
  return undefined
}

export function compileRuleSet (apps: AppConfig[], levelNames: string[]): CompileResult {
  const builder = ruleSetBuilder(levelNames)
  for (const app of apps) builder.add(app)
  return builder.build()
}

/**
 * compileRuleSet one app at a time: `add` compiles the next app of `apps:` (errors are
 * collected, not thrown), `build` returns the result of all of them. The benchmark of the
 * decision builds rule sets of several sizes side by side with it (benchmarks/decision.ts).
 */
export interface RuleSetBuilder {
  add (app: AppConfig): void
  build (): CompileResult
}

export function ruleSetBuilder (levelNames: string[]): RuleSetBuilder {
  const errors: CompileError[] = []
  const levels = ['none', ...levelNames]
  const levelRanks = new Map<string, number>()
  levels.forEach((name, rank) => {
    if (levelRanks.has(name)) {
      errors.push({
        path: ['device_trust', 'levels', rank - 1, 'name'],
        message: name === 'none' ? 'device trust level "none" is built in (no device); pick another name' : `duplicate device trust level "${name}"`
      })
    } else {
      levelRanks.set(name, rank)
    }
  })
  const ctx: CompileContext = { errors, levelRanks, levels }

  const compiled: CompiledApp[] = []
  const byHost = new Map<string, CompiledApp>()
  const hostOwner = new Map<string, string>()
  const defaultPort = new Map<string, string>()
  const nameIndex = new Map<string, number>()

  let count = 0
  const add = (app: AppConfig): void => {
    const i = count++
    const at = ['apps', i]
    if (nameIndex.has(app.name)) {
      errors.push({ path: [...at, 'name'], message: `duplicate app name "${app.name}" (also apps[${nameIndex.get(app.name)}])` })
    } else {
      nameIndex.set(app.name, i)
    }

    let url: URL | undefined
    try { url = new URL(app.from) } catch { url = undefined }
    const problem = fromProblem(app.from, url)
    if (problem !== undefined) errors.push({ path: [...at, 'from'], message: problem })
    const host = url?.host ?? ''
    if (problem === undefined) {
      const owner = hostOwner.get(host)
      if (owner !== undefined) errors.push({ path: [...at, 'from'], message: `from: host ${host} is already served by app "${owner}"` })
      else hostOwner.set(host, app.name)
    }

    const publicPaths = compileGlobList(app.public_paths ?? [], [...at, 'public_paths'], ctx)

    const rules: CompiledRule[] = []
    const ruleNames = new Set<string>()
    ;(app.rules ?? []).forEach((rule, j) => {
      const ruleAt = [...at, 'rules', j]
      if (RESERVED_RULE_NAMES.has(rule.name)) {
        errors.push({ path: [...ruleAt, 'name'], message: `rule name "${rule.name}" is reserved for decisions made without a rule` })
      } else if (ruleNames.has(rule.name)) {
        errors.push({ path: [...ruleAt, 'name'], message: `duplicate rule name "${rule.name}" in app ${app.name}: decisions would be ambiguous` })
      }
      ruleNames.add(rule.name)
      if ((rule.allow === undefined) === (rule.deny === undefined)) {
        errors.push({
          path: ruleAt,
          message: rule.allow === undefined
            ? `rule "${rule.name}" needs allow or deny`
            : `rule "${rule.name}" has both allow and deny; split it into two rules`
        })
        return
      }
      const effect = rule.allow !== undefined ? 'allow' : 'deny'
      const condition = compileCondition((rule.allow ?? rule.deny)!, [...ruleAt, effect], ctx)
      if (condition !== undefined) rules.push(Object.freeze({ name: rule.name, effect, index: j, condition, test: condition.test, allowed: effect === 'allow' ? frozenDecision('allow', rule.name) : null }))
    })

    if (errors.length > 0 || url === undefined || publicPaths === undefined) return
    const app_: CompiledApp = Object.freeze({
      name: app.name,
      from: app.from,
      origin: url.origin,
      host,
      to: app.to,
      config: deepFreeze(structuredClone(app)),
      isPublicPath: publicPaths.matches,
      rules: frozenArray(rules),
      denyRules: frozenArray(rules.filter((r) => r.effect === 'deny')),
      allowRules: frozenArray(rules.filter((r): r is AllowRule => r.effect === 'allow'))
    })
    compiled.push(app_)
    byHost.set(host, app_)
    defaultPort.set(host, DEFAULT_PORT[url.protocol] as string)
  }

  let built = false
  const build = (): CompileResult => {
    if (built) throw new Error('ruleSetBuilder: build() was called already')
    built = true
    if (errors.length > 0) return { ok: false, errors }

    const lookupHost = (hostHeader: string): CompiledApp | undefined => {
      const key = hostHeader.toLowerCase()
      const colon = plainHostColon(key)
      if (colon === undefined) return undefined
      const exact = byHost.get(key)
      if (exact !== undefined) return exact
      if (colon === -1) return undefined
      // `host:80` is `host` for an http app, `host:443` for an https app.
      const port = key.slice(colon + 1)
      const bare = key.slice(0, colon)
      return defaultPort.get(bare) === port ? byHost.get(bare) : undefined
    }

    return {
      ok: true,
      ruleset: Object.freeze({
        apps: frozenArray(compiled),
        byHost: frozenMap(byHost),
        levels: frozenArray(levels),
        lookupHost
      })
    }
  }

  return {
    add: (app) => {
      if (built) throw new Error('ruleSetBuilder: add() after build()')
      add(app)
    },
    build
  }
}

/** A decision without reasons, frozen (reasons too): one object shared by every request it answers. */
export function frozenDecision (decision: Decision['decision'], rule: string): Decision {
  return Object.freeze({ decision, rule, reasons: frozenArray<string>([]) })
}

/** Frozen at run time, typed as the plain array the interface promises. */
function frozenArray<T> (array: T[]): T[] {
  Object.freeze(array)
  return array
}

/** A Map whose mutators throw: Object.freeze alone does not stop Map#set. */
function frozenMap<K, V> (map: Map<K, V>): Map<K, V> {
  const refuse = (): never => { throw new TypeError('RuleSet is immutable; compile a new one') }
  Object.defineProperties(map, { set: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } })
  return Object.freeze(map)
}

/**
 * Checks that `host` (already lowercase) is a plain `host[:port]`: a reg-name or IPv4
 * (letters, digits, `-`, `.`, `_`) or a bracketed IPv6 literal, and an optional port of
 * 1-5 digits without a leading zero. Returns the index of the port's `:`, -1 without a
 * port, or undefined when malformed.
 */
function plainHostColon (host: string): number | undefined {
  const n = host.length
  if (n === 0 || n > 300) return undefined
  let i = 0
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    i = 1
    while (i < n) {
      const c = host.charCodeAt(i)
      if (c === 0x5d /* ] */) break
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || c === 0x3a || c === 0x2e)) return undefined
      i++
    }
    if (i === n || i === 1) return undefined
    i++
  } else {
    while (i < n) {
      const c = host.charCodeAt(i)
      if (c === 0x3a) break
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f)) return undefined
      i++
    }
    if (i === 0) return undefined
  }
  if (i === n) return -1
  if (host.charCodeAt(i) !== 0x3a) return undefined
  const digits = n - i - 1
  if (digits < 1 || digits > 5 || host.charCodeAt(i + 1) === 0x30) return undefined
  for (let k = i + 1; k < n; k++) {
    const c = host.charCodeAt(k)
    if (c < 0x30 || c > 0x39) return undefined
  }
  if (Number(host.slice(i + 1)) > 65535) return undefined
  return i
}
