/** `methods: [...]` — the HTTP method, case-insensitive. */
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { checkStrings, leaf, listOf } from './criterion.js'

/** RFC 9110 §9.1: a method is a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

export function compileMethods (values: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(values, path, ctx, 'methods')) return undefined
  let ok = true
  values.forEach((v, i) => {
    if (!TOKEN.test(v)) {
      ctx.errors.push({ path: [...path, i], message: `methods: "${v}" is not an HTTP method name` })
      ok = false
    }
  })
  if (!ok) return undefined
  const upper = values.map((v) => v.toUpperCase())
  const wanted = new Set(upper)
  return leaf({
    kind: 'request',
    description: `via ${listOf(upper)}`,
    // Node already gives upper-case methods; the second lookup is for the odd client.
    test: (input) => wanted.has(input.method) || wanted.has(input.method.toUpperCase()),
    unmet: () => ({ code: 'http-method-unauthorized', message: `only for methods ${listOf(upper)}` }),
    matched: (input) => `via ${input.method.toUpperCase()}`
  })
}
