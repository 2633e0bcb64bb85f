/** `emails: [...]` — the user's email address, case-insensitive. */
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { checkStrings, leaf, oneOf } from './criterion.js'

export function compileEmails (values: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(values, path, ctx, 'emails')) return undefined
  let ok = true
  values.forEach((v, i) => {
    if (!v.includes('@')) {
      ctx.errors.push({ path: [...path, i], message: `emails: "${v}" is not an email address (for a whole domain, use domains)` })
      ok = false
    }
  })
  if (!ok) return undefined
  const emails = new Set(values.map((v) => v.toLowerCase()))
  const wanted = oneOf('email', 'emails', values)
  return leaf({
    kind: 'subject',
    description: `with ${wanted}`,
    test: (input) => {
      const email = input.identity?.email
      return email !== undefined && emails.has(email.toLowerCase())
    },
    unmet: () => ({ code: 'email-unauthorized', message: `needs ${wanted}` }),
    matched: (input) => `with email ${input.identity?.email ?? ''}`
  })
}
