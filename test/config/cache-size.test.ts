import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkConfig } from '../../src/cli/load.js'
import { formatErrors } from '../../src/config/index.js'
import { BASE, errorsOf, mustLoad } from './helpers.js'

const SECRET_LINE = '  secret: 0123456789abcdef0123456789abcdef\n'
/** BASE with `cache_size: VALUE` under session (line 9). */
const withCacheSize = (value: string): string => BASE.replace(SECRET_LINE, () => `${SECRET_LINE}  cache_size: ${value}\n`)

t.test('session.cache_size defaults to 100000', async (t) => {
  t.equal(mustLoad(BASE).config.session.cache_size, 100_000)
  t.equal(mustLoad(withCacheSize('20000')).config.session.cache_size, 20_000)
  t.equal(mustLoad(withCacheSize('100')).config.session.cache_size, 100, 'the smallest allowed')
})

t.test('session.cache_size below 100 or not an integer is refused, at the key', async (t) => {
  t.same(errorsOf(withCacheSize('50')), ['9:15 session.cache_size: must be >= 100'])
  t.same(errorsOf(withCacheSize('1000.5')), ['9:15 session.cache_size: expected an integer, got number 1000.5'])
  t.same(errorsOf(withCacheSize('"20000"')), ['9:15 session.cache_size: expected a number, got string "20000"'])
})

t.test('moatless check names the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moatless-cache-size-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'moatless.yaml')
  writeFileSync(file, withCacheSize('50'))
  const r = checkConfig(file)
  t.equal(r.ok, false)
  if (!r.ok) t.equal(formatErrors(r.errors), `${file}:9:15 session.cache_size: must be >= 100`)
  writeFileSync(file, withCacheSize('20000'))
  t.equal(checkConfig(file).ok, true)
})
