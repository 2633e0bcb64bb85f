/**
 * `emails: [...]` — the user's email address, case-insensitive, and only when the IdP says it
 * is verified (an unverified address is a claim anyone can type at many IdPs: "nOAuth").
 * Only ASCII addresses are lowercased, so no Unicode case folding (K, Kelvin sign) can alias one.
 */
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
      const id = input.identity
      const email = id?.email
      return email !== undefined && id?.email_verified === true && isAscii(email) && emails.has(email.toLowerCase())
    },
    unmet: (input) => input.identity?.email !== undefined && input.identity.email_verified !== true
      ? { code: 'email-unverified', message: `needs ${wanted}, verified by the identity provider` }
      : { code: 'email-unauthorized', message: `needs ${wanted}` },
    matched: (input) => `with email ${input.identity?.email ?? ''}`
  })
}

export function isAscii (s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) return false
  return true
}
