/**
 * Compiles a rule's condition: its keys are ANDed, and `all_of`, `any_of` and `not` nest
 * conditions. Each key is compiled by its own file in ./criteria.
 */
import type { Condition } from '../config/schema.js'
import { compileAuthenticated } from './criteria/authenticated.js'
import { compileClaims } from './criteria/claims.js'
import { compileDevice } from './criteria/device.js'
import { compileDomains } from './criteria/domains.js'
import { compileEmails } from './criteria/emails.js'
import { compileGroups } from './criteria/groups.js'
import { compileMethods } from './criteria/methods.js'
import { compilePaths } from './criteria/paths.js'
import { compileSourceIps } from './criteria/source-ips.js'
import { compileUsers } from './criteria/users.js'
import type { CompileContext, ConfigPath, Criterion, DecisionInput, Unmet } from './types.js'

type Key = keyof Condition

/**
 * Fixed order, which is also the order of explanations: who, then on what device, then
 * which requests — so a deny reason reads "member of contractors on /admin/**".
 */
const KEYS: readonly Key[] = [
  'authenticated', 'users', 'emails', 'domains', 'groups', 'claims', 'device',
  'paths', 'methods', 'source_ips', 'all_of', 'any_of', 'not'
]
const KNOWN = new Set<string>(KEYS)

/** Criteria ANDed: the shape of a condition and of `all_of`. */
function allOf (criteria: readonly Criterion[]): Criterion {
  const list = Object.freeze([...criteria])
  // The tests themselves, not the criteria holding them: one object fewer to read per criterion.
  const tests = list.map((c) => c.test)
  return Object.freeze({
    kind: 'subject' as const,
    description: list.map((c) => c.description).join(' '),
    test: (input: DecisionInput) => {
      for (let i = 0; i < tests.length; i++) if (!(tests[i] as Criterion['test'])(input)) return false
      return true
    },
    unmet: (input: DecisionInput) => list.filter((c) => !c.test(input)).flatMap((c) => c.unmet(input)),
    matched: (input: DecisionInput) => list.map((c) => c.matched(input)).join(' '),
    inScope: (input: DecisionInput) => list.every((c) => c.inScope(input))
  })
}

/** Criteria whose description is already in parentheses. */
const parenthesized = new WeakSet<Criterion>()

function anyOf (branches: readonly Criterion[]): Criterion {
  const list = Object.freeze([...branches])
  const tests = list.map((c) => c.test)
  const phrase = (parts: string[]): string => (parts.length === 1 ? parts[0] as string : `(${parts.join(' and ')})`)
  const criterion: Criterion = Object.freeze({
    kind: 'subject' as const,
    description: `(${list.map((c) => c.description).join(' or ')})`,
    test: (input: DecisionInput) => {
      for (let i = 0; i < tests.length; i++) if ((tests[i] as Criterion['test'])(input)) return true
      return false
    },
    unmet: (input: DecisionInput): Unmet[] => [{
      code: 'any-of-unmet',
      message: `needs one of: ${list.map((c) => phrase(c.unmet(input).map((u) => u.message))).join(' or ')}`
    }],
    matched: (input: DecisionInput) => list.find((c) => c.test(input))?.matched(input) ?? '',
    inScope: (input: DecisionInput) => list.some((c) => c.inScope(input))
  })
  parenthesized.add(criterion)
  return criterion
}

function not (inner: Criterion): Criterion {
  const innerTest = inner.test
  const description = parenthesized.has(inner) ? `not ${inner.description}` : `not (${inner.description})`
  return Object.freeze({
    kind: 'subject' as const,
    description,
    test: (input: DecisionInput) => !innerTest(input),
    unmet: (input: DecisionInput): Unmet[] => [{ code: 'excluded', message: `must not be ${inner.matched(input)}` }],
    matched: () => description,
    // Which requests a negated condition is about cannot be told from its inside.
    inScope: () => true
  })
}

/** Compiles `cond` (at `path` in the config document), or records errors and returns undefined. */
export function compileCondition (cond: Condition, path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (cond === null || typeof cond !== 'object' || Array.isArray(cond)) {
    ctx.errors.push({ path, message: 'a condition must be a map of criteria' })
    return undefined
  }
  let ok = true
  for (const key of Object.keys(cond)) {
    if (!KNOWN.has(key)) {
      ctx.errors.push({ path: [...path, key], message: `unknown criterion "${key}"` })
      ok = false
    }
  }
  const criteria: Criterion[] = []
  const add = (c: Criterion | Criterion[] | undefined): void => {
    if (c === undefined) ok = false
    else if (Array.isArray(c)) criteria.push(...c)
    else criteria.push(c)
  }
  let present = 0
  for (const key of KEYS) {
    const at = [...path, key]
    switch (key) {
      case 'authenticated':
        if (cond.authenticated === undefined) continue
        add(compileAuthenticated())
        break
      case 'users':
        if (cond.users === undefined) continue
        add(compileUsers(cond.users, at, ctx))
        break
      case 'emails':
        if (cond.emails === undefined) continue
        add(compileEmails(cond.emails, at, ctx))
        break
      case 'domains':
        if (cond.domains === undefined) continue
        add(compileDomains(cond.domains, at, ctx))
        break
      case 'groups':
        if (cond.groups === undefined) continue
        add(compileGroups(cond.groups, at, ctx))
        break
      case 'claims':
        if (cond.claims === undefined) continue
        add(compileClaims(cond.claims, at, ctx))
        break
      case 'device':
        if (cond.device === undefined) continue
        add(compileDevice(cond.device, at, ctx))
        break
      case 'paths':
        if (cond.paths === undefined) continue
        add(compilePaths(cond.paths, at, ctx))
        break
      case 'methods':
        if (cond.methods === undefined) continue
        add(compileMethods(cond.methods, at, ctx))
        break
      case 'source_ips':
        if (cond.source_ips === undefined) continue
        add(compileSourceIps(cond.source_ips, at, ctx))
        break
      case 'all_of': {
        if (cond.all_of === undefined) continue
        if (cond.all_of.length === 0) {
          ctx.errors.push({ path: at, message: 'all_of: an empty list matches every request by accident; list conditions or remove it' })
          ok = false
          break
        }
        const parts = cond.all_of.map((c, i) => compileCondition(c, [...at, i], ctx))
        add(parts.every((c) => c !== undefined) ? allOf(parts as Criterion[]) : undefined)
        break
      }
      case 'any_of': {
        if (cond.any_of === undefined) continue
        if (cond.any_of.length === 0) {
          ctx.errors.push({ path: at, message: 'any_of: an empty list never matches; list conditions or remove it' })
          ok = false
          break
        }
        const parts = cond.any_of.map((c, i) => compileCondition(c, [...at, i], ctx))
        add(parts.every((c) => c !== undefined) ? anyOf(parts as Criterion[]) : undefined)
        break
      }
      case 'not': {
        if (cond.not === undefined) continue
        const inner = compileCondition(cond.not, at, ctx)
        add(inner === undefined ? undefined : not(inner))
        break
      }
    }
    present++
  }
  if (present === 0 && ok) {
    ctx.errors.push({
      path,
      message: 'empty condition {} matches every request by accident; say what it requires (for any signed-in user: authenticated: true)'
    })
    return undefined
  }
  if (!ok) return undefined
  return criteria.length === 1 ? criteria[0] : allOf(criteria)
}
