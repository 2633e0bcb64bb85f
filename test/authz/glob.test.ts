import t from 'tap'
import { compileGlob, type Glob } from '../../src/authz/index.js'

function glob (source: string): Glob {
  const g = compileGlob(source)
  if ('error' in g) throw new Error(g.error)
  return g
}

t.test('glob matching on normalized paths', async (t) => {
  const table: [string, [string, boolean][]][] = [
    ['/admin/**', [['/admin', true], ['/admin/', true], ['/admin/x', true], ['/admin/x/y/', true],
      ['/administrator', false], ['/Admin', false], ['/', false], ['/x/admin', false]]],
    ['/static/*', [['/static/a.css', true], ['/static/a/', true], ['/static', false], ['/static/', false], ['/static/a/b', false]]],
    ['/*.css', [['/a.css', true], ['/.css', true], ['/x/a.css', false], ['/a.cssx', false]]],
    ['/api/*/items', [['/api/v1/items', true], ['/api/v1/v2/items', false], ['/api/items', false]]],
    ['/api/**/items', [['/api/items', true], ['/api/a/items', true], ['/api/a/b/items', true], ['/api/a/items/x', false], ['/api/itemsx', false]]],
    ['/**', [['/', true], ['/a', true], ['/a/b/c/', true]]],
    ['/', [['/', true], ['/a', false]]],
    ['/*', [['/a', true], ['/a/', true], ['/', false], ['/a/b', false]]],
    ['/a/v*-beta/x', [['/a/v2-beta/x', true], ['/a/v-beta/x', true], ['/a/v2-beta', false], ['/a/v2-alpha/x', false]]],
    ['/a*b*c', [['/abc', true], ['/axxbyyc', true], ['/abbc', true], ['/acb', false], ['/ab', false], ['/ab/c', false]]],
    ['/x*x', [['/x', false], ['/xx', true], ['/xax', true]]],
    ['/healthz', [['/healthz', true], ['/healthz/', true], ['/healthz/x', false], ['/healthzz', false]]],
    ['/admin/', [['/admin/', true], ['/admin', false], ['/admin/x', false]]],
    ['/**/*.css', [['/a.css', true], ['/x/y/z.css', true], ['/x/y/z.js', false]]],
    ['/a/**/b/**/c', [['/a/b/c', true], ['/a/x/b/y/z/c', true], ['/a/b/b/c', true], ['/a/c', false], ['/a/b/x', false], ['/a/b/c/d', false]]],
    ['/a/**/**/b', [['/a/b', true], ['/a/x/y/b', true]]],
    ['/a%20b/*', [['/a%20b/c', true], ['/a b/c', false]]],
    ['/files/%E2%82%AC', [['/files/%E2%82%AC', true]]]
  ]
  for (const [source, paths] of table) {
    const g = glob(source)
    for (const [path, want] of paths) t.equal(g.matches(path), want, `${source} ${want ? 'matches' : 'does not match'} ${path}`)
  }
})

t.test('matching stays fast on adversarial input', async (t) => {
  // Backtracking matchers go exponential/polynomial here; the segment matcher stays linear-ish.
  const many = glob('/**/a/**/a/**/a/**/a/**/b')
  const star = glob('/*a*a*a*a*a*b')
  const deep = '/a'.repeat(4000)
  const wide = '/' + 'a'.repeat(8000)
  const start = process.hrtime.bigint()
  t.equal(many.matches(deep), false)
  t.equal(star.matches(wide), false)
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  t.ok(ms < 500, `took ${ms.toFixed(1)} ms`)
})
