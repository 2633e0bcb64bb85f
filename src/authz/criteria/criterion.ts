/** What the criterion files share: building a leaf criterion and wording lists. */
import type { CompileContext, ConfigPath, Criterion, DecisionInput, Unmet } from '../types.js'

export interface LeafSpec {
  kind: Criterion['kind']
  description: string
  test (input: DecisionInput): boolean
  unmet (input: DecisionInput): Unmet
  matched? (input: DecisionInput): string
}

export function leaf (spec: LeafSpec): Criterion {
  const { kind, description, test } = spec
  const matched = spec.matched ?? (() => description)
  return Object.freeze({
    kind,
    description,
    test,
    unmet: (input: DecisionInput) => [spec.unmet(input)],
    matched,
    // A request criterion scopes its rule; a subject criterion never does.
    inScope: kind === 'request' ? test : () => true
  })
}

const SHOWN = 10

/** `a, b, c` — long lists are cut so that a deny page stays readable. */
export function listOf (values: readonly unknown[]): string {
  const shown = values.slice(0, SHOWN).map(String).join(', ')
  return values.length > SHOWN ? `${shown} (+${values.length - SHOWN} more)` : shown
}

/** `group a` or `one of groups a, b`. */
export function oneOf (singular: string, plural: string, values: readonly unknown[]): string {
  return values.length === 1 ? `${singular} ${String(values[0])}` : `one of ${plural} ${listOf(values)}`
}

/**
 * Checks a criterion's list of strings: an empty list or an empty string can only be a
 * mistake (it never matches). Returns false when an error was recorded.
 */
export function checkStrings (values: readonly string[], path: ConfigPath, ctx: CompileContext, key: string): boolean {
  if (values.length === 0) {
    ctx.errors.push({ path, message: `${key}: an empty list never matches; remove the key or add values` })
    return false
  }
  let ok = true
  values.forEach((v, i) => {
    if (v.trim() === '') {
      ctx.errors.push({ path: [...path, i], message: `${key}: an empty value never matches` })
      ok = false
    }
  })
  return ok
}
