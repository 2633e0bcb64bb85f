/** `authenticated: true` — any signed-in user (session cookie or bearer token). */
import type { Criterion } from '../types.js'
import { leaf } from './criterion.js'

export function compileAuthenticated (): Criterion {
  return leaf({
    kind: 'subject',
    description: 'signed in',
    test: (input) => input.identity !== null,
    unmet: () => ({ code: 'user-unauthenticated', message: 'needs a signed-in user' })
  })
}
