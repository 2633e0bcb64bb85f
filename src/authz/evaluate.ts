/**
 * The decision: pure, request in, decision out. Order (SPEC "Rules"): public path →
 * allowed without identity; no identity → unauthenticated; any matching deny → deny;
 * any matching allow → allow; else default deny, with what each applicable allow rule
 * lacked.
 */
import type { Decision } from '../context.js'
import { frozenDecision, type CompiledApp, type CompiledRule } from './compile.js'
import type { DecisionInput } from './types.js'

export type { DecisionInput } from './types.js'

/** Shared by every request on a public path (frozen, as the allow rules' decisions). */
const PUBLIC_PATH = frozenDecision('allow', 'public-path')

export function evaluate (app: CompiledApp, input: DecisionInput): Decision {
  if (app.isPublicPath(input.path)) return PUBLIC_PATH
  if (input.identity === null) {
    return { decision: 'unauthenticated', rule: 'authentication-required', reasons: ['user-unauthenticated: needs a signed-in user'] }
  }
  const deny = firstMatch(app.denyRules, input)
  if (deny !== undefined) {
    return { decision: 'deny', rule: deny.name, reasons: [`${deny.name}: ${deny.condition.matched(input)}`] }
  }
  const allow = firstMatch(app.allowRules, input)
  if (allow !== undefined) return allow.allowed
  return { decision: 'deny', rule: 'default-deny', reasons: defaultDenyReasons(app, input) }
}

function firstMatch<R extends CompiledRule> (rules: readonly R[], input: DecisionInput): R | undefined {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as R
    if (rule.test(input)) return rule
  }
  return undefined
}

/**
 * `"<rule>: <code>: <what is missing>"` for each allow rule about this request (its paths
 * and methods match) — or for every allow rule when none is about it, so the page still
 * says where access could come from.
 */
function defaultDenyReasons (app: CompiledApp, input: DecisionInput): string[] {
  if (app.allowRules.length === 0) return ['no-allow-rule: this app has no allow rule']
  const inScope = app.allowRules.filter((r) => r.condition.inScope(input))
  const rules = inScope.length > 0 ? inScope : app.allowRules
  return rules.flatMap((r) => r.condition.unmet(input).map((u) => `${r.name}: ${u.code}: ${u.message}`))
}

export interface RuleExplanation {
  rule: string
  effect: 'allow' | 'deny'
  matched: boolean
  /** `<code>: <message>` for each unmet requirement; empty when matched. */
  unmet: string[]
}

/** Every rule of the app, in config order, with whether it matched and what it lacked. */
export function explain (app: CompiledApp, input: DecisionInput): RuleExplanation[] {
  return app.rules.map((r) => {
    const matched = r.condition.test(input)
    return {
      rule: r.name,
      effect: r.effect,
      matched,
      unmet: matched ? [] : r.condition.unmet(input).map((u) => `${u.code}: ${u.message}`)
    }
  })
}
