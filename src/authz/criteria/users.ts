/** `users: [...]` — the subject (`sub`, exact) or the verified email (case-insensitive, ASCII) of the user. */
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { checkStrings, leaf, oneOf } from './criterion.js'
import { isAscii } from './emails.js'

export function compileUsers (values: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(values, path, ctx, 'users')) return undefined
  const subs = new Set(values)
  const emails = new Set(values.filter((v) => v.includes('@')).map((v) => v.toLowerCase()))
  const wanted = oneOf('user', 'users', values)
  return leaf({
    kind: 'subject',
    description: `as ${wanted}`,
    test: (input) => {
      const id = input.identity
      if (id === null) return false
      if (subs.has(id.sub)) return true
      return id.email !== undefined && id.email_verified === true && emails.size > 0 && isAscii(id.email) && emails.has(id.email.toLowerCase())
    },
    unmet: () => ({ code: 'user-unauthorized', message: `needs ${wanted}` }),
    matched: (input) => {
      const id = input.identity
      return id !== null && subs.has(id.sub) ? `as user ${id.sub}` : `as user ${id?.email ?? ''}`
    }
  })
}
