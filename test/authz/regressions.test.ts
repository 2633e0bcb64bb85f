/**
 * Regressions found by the hardening review, one test each.
 *
 * Regression (found by the hardening suite): `emails:` and `users:` matched an email the IdP
 * had not verified — the "nOAuth" pattern, where anyone can register an account with someone
 * else's address at a multi-tenant IdP — and lowercased with Unicode rules, so the Kelvin sign
 * (U+212A) in "\u212Aate@example.com" matched "kate@example.com".
 */
import t from 'tap'
import { evaluate } from '../../src/authz/index.js'
import { compileApp, request, user } from './fixtures.js'

const byEmail = compileApp({ rules: [{ name: 'r', allow: { emails: ['kate@example.com'] } }] })
const byUser = compileApp({ rules: [{ name: 'r', allow: { users: ['kate@example.com'] } }] })

t.test('a verified email matches, case-insensitively', async (t) => {
  for (const app of [byEmail, byUser]) {
    t.equal(evaluate(app, request({ identity: user({ email: 'Kate@Example.com', email_verified: true }) })).decision, 'allow')
  }
})

t.test('an unverified email never matches emails: or users:', async (t) => {
  for (const app of [byEmail, byUser]) {
    t.equal(evaluate(app, request({ identity: user({ email: 'kate@example.com', email_verified: false }) })).decision, 'deny')
    t.equal(evaluate(app, request({ identity: user({ email: 'kate@example.com', email_verified: undefined }) })).decision, 'deny')
  }
  const d = evaluate(byEmail, request({ identity: user({ email: 'kate@example.com', email_verified: false }) }))
  t.match(d.reasons.join(' '), /email-unverified/, 'the deny explains why')
})

t.test('no Unicode case folding aliases an address', async (t) => {
  for (const app of [byEmail, byUser]) {
    t.equal(evaluate(app, request({ identity: user({ email: '\u212Aate@example.com', email_verified: true }) })).decision, 'deny')
  }
})

t.test('regression: globs that could never match a normalized path are compile errors', async (t) => {
  const { compileGlob } = await import('../../src/authz/index.js')
  for (const g of ['/admin;x', '/a%3Bb', '/a"b', '/a<b', '/a{b}', '/a`b']) {
    t.ok('error' in compileGlob(g), `${g} refused`)
  }
  t.notOk('error' in compileGlob('/a%22b'), 'the encoded form is accepted')
})
