/**
 * `claims: { NAME: [values] }` — the token claim NAME equals one of the values, or, for an
 * array claim, contains one of them. Comparison is strict: the string "1" is not the
 * number 1, `"true"` is not `true`. Several names are ANDed, one criterion each.
 */
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { leaf, listOf } from './criterion.js'

type ClaimValue = string | number | boolean

const SHOWN_CHARS = 80

/** A claim value as a deny page may show it: short, and only plain values. */
function show (value: unknown): string {
  if (value === undefined) return 'claim absent'
  let text: string
  if (Array.isArray(value)) {
    text = value.every((v) => ['string', 'number', 'boolean'].includes(typeof v)) ? `has: ${listOf(value)}` : 'has another value'
  } else if (['string', 'number', 'boolean'].includes(typeof value)) {
    text = `has: ${String(value)}`
  } else {
    text = 'has another value'
  }
  return text.length > SHOWN_CHARS ? text.slice(0, SHOWN_CHARS - 1) + '…' : text
}

function compileClaim (name: string, values: ClaimValue[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (values.length === 0) {
    ctx.errors.push({ path, message: `claims: ${name}: an empty list never matches; remove the key or add values` })
    return undefined
  }
  const wanted = new Set<unknown>(values)
  const read = (claims: Record<string, unknown>): unknown => (Object.hasOwn(claims, name) ? claims[name] : undefined)
  const wantedText = values.length === 1 ? `${name} = ${String(values[0])}` : `${name} in ${listOf(values)}`
  return leaf({
    kind: 'subject',
    description: `with claim ${wantedText}`,
    test: (input) => {
      if (input.identity === null) return false
      const value = read(input.identity.claims)
      if (Array.isArray(value)) {
        for (const v of value) if (wanted.has(v)) return true
        return false
      }
      return wanted.has(value)
    },
    unmet: (input) => ({
      code: 'claim-unauthorized',
      message: `needs claim ${wantedText} (${show(input.identity === null ? undefined : read(input.identity.claims))})`
    })
  })
}

export function compileClaims (claims: Record<string, ClaimValue[]>, path: ConfigPath, ctx: CompileContext): Criterion[] | undefined {
  const names = Object.keys(claims)
  if (names.length === 0) {
    ctx.errors.push({ path, message: 'claims: an empty claims map matches every request by accident; name at least one claim' })
    return undefined
  }
  const compiled: Criterion[] = []
  let ok = true
  for (const name of names) {
    if (name === '') {
      ctx.errors.push({ path: [...path, name], message: 'claims: a claim name cannot be empty' })
      ok = false
      continue
    }
    const c = compileClaim(name, claims[name] ?? [], [...path, name], ctx)
    if (c === undefined) ok = false
    else compiled.push(c)
  }
  return ok ? compiled : undefined
}
