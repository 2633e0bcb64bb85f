import t from 'tap'
import { readFileSync } from 'node:fs'
import { ERRORS, MoatlessError } from '../src/errors.js'

t.test('docs/errors.md lists every code with its status, and nothing else', async (t) => {
  const doc = readFileSync('docs/errors.md', 'utf8')
  const rows = [...doc.matchAll(/^\| (MOATLESS_ERR_[A-Z_]+) \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])])
  t.same(Object.fromEntries(rows), Object.fromEntries(Object.entries(ERRORS).map(([code, e]) => [code, e.status])))
})

t.test('MoatlessError carries code, status and cause', async (t) => {
  const cause = new Error('boom')
  const err = new MoatlessError('MOATLESS_ERR_STORE_UNAVAILABLE', undefined, { cause })
  t.equal(err.code, 'MOATLESS_ERR_STORE_UNAVAILABLE')
  t.equal(err.statusCode, 503)
  t.equal(err.cause, cause)
  t.equal(err.message, ERRORS.MOATLESS_ERR_STORE_UNAVAILABLE.message)
})
