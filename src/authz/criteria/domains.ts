/**
 * `domains: [...]` — the exact part after the single `@` of a verified email
 * (`email_verified: true`), case-insensitive. No subdomains: `example.com` does not admit
 * `evil.example.com`. An email with two `@` never matches, so that no IdP's idea of which
 * `@` counts can be played against ours.
 */
import type { Identity } from '../../context.js'
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { checkStrings, leaf, listOf } from './criterion.js'

/** The lowercase domain of an email with exactly one `@`, else undefined. */
function emailDomain (email: string | undefined): string | undefined {
  if (email === undefined) return undefined
  const at = email.indexOf('@')
  if (at <= 0 || at !== email.lastIndexOf('@') || at === email.length - 1) return undefined
  return email.slice(at + 1).toLowerCase()
}

export function compileDomains (values: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(values, path, ctx, 'domains')) return undefined
  let ok = true
  values.forEach((v, i) => {
    if (v.includes('@') || /\s/.test(v)) {
      ctx.errors.push({ path: [...path, i], message: `domains: "${v}" is not a domain; write it without @ (e.g. example.com)` })
      ok = false
    }
  })
  if (!ok) return undefined
  const domains = new Set(values.map((v) => v.toLowerCase()))
  const wanted = values.length === 1 ? `domain ${values[0]}` : `one of domains ${listOf(values)}`
  const inDomain = (id: Identity | null): boolean => {
    const domain = emailDomain(id?.email)
    return domain !== undefined && domains.has(domain)
  }
  return leaf({
    kind: 'subject',
    description: `with a verified email in ${wanted}`,
    test: (input) => input.identity !== null && input.identity.email_verified === true && inDomain(input.identity),
    unmet: (input) => {
      const id = input.identity
      if (id !== null && inDomain(id)) {
        return { code: 'email-unverified', message: `needs a verified email in ${wanted} (the IdP does not say the email is verified)` }
      }
      return { code: 'domain-unauthorized', message: `needs a verified email in ${wanted}` }
    },
    matched: (input) => `with a verified email in domain ${emailDomain(input.identity?.email) ?? ''}`
  })
}
