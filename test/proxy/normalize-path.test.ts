/**
 * The request target is decided on and forwarded as one string. These cases are the
 * classic proxy/upstream disagreements: `/%61dmin` vs `/admin`, `/admin%2f..`, `..;/`
 * (Tomcat/Jetty), backslashes (IIS, some Node routers), `//` (nginx merge_slashes).
 */
import fc from 'fast-check'
import t from 'tap'
import { normalizeRequestTarget } from '../../src/proxy/normalize-path.js'

/** A test name that stays on one TAP line, whatever the target holds. */
function show (raw: string): string {
  return JSON.stringify(raw).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

t.test('accepted, with the normalized path', async (t) => {
  const table: [string, string, string?][] = [
    // [raw, path, search]
    ['/', '/'],
    ['/admin', '/admin'],
    ['/admin/', '/admin/'],
    ['/a/b/c', '/a/b/c'],
    ['/%61dmin', '/admin'],
    ['/%41%5a%61%7A%30%39%2D%2E%5F%7E', '/AZaz09-._~'],
    ['/%7e', '/~'],
    ['/%7euser/', '/~user/'],
    ['/a%20b', '/a%20b'],
    ['/A%2a', '/A%2A'],
    ['/a%2a%2ax%61', '/a%2A%2Axa'],
    ['/%c3%a9t%C3%A9', '/%C3%A9t%C3%A9'],
    ['/%25', '/%25'],
    ['/%2561', '/%2561'],
    ['/100%25', '/100%25'],
    ['/a%252eb', '/a%252eb'],
    ['/%0a', '/%0A'],
    ['/a/...', '/a/...'],
    ['/a/.b', '/a/.b'],
    ['/a/b.', '/a/b.'],
    ['/.well-known/jwks.json', '/.well-known/jwks.json'],
    ['/a"b', '/a%22b'],
    ['/a<b>{c}`d', '/a%3Cb%3E%7Bc%7D%60d'],
    ['/a|b^c[d]', '/a|b^c[d]'],
    ['/%ef%bd%81dmin', '/%EF%BD%81dmin'],
    ['/a:b@c!$&\'()*+,=', '/a:b@c!$&\'()*+,='],
    ['/a?', '/a', '?'],
    ['/a?x=1&y=%2f..//%zz', '/a', '?x=1&y=%2f..//%zz'],
    ['/%61?%61', '/a', '?%61'],
    ['/a?b?c', '/a', '?b?c'],
    ['/?q', '/', '?q']
  ]
  for (const [raw, path, search = ''] of table) {
    t.same(normalizeRequestTarget(raw), { ok: true, path, search }, show(raw))
  }
})

t.test('rejected, with the reason', async (t) => {
  const table: [string, string][] = [
    ['', 'not-origin-form'],
    ['*', 'not-origin-form'],
    ['http://x/', 'not-origin-form'],
    ['https://x/admin', 'not-origin-form'],
    ['x.example:443', 'not-origin-form'],
    ['admin', 'not-origin-form'],
    ['?a', 'not-origin-form'],
    ['/a#b', 'fragment'],
    ['/a?b#c', 'fragment'],
    ['/#', 'fragment'],
    ['/%zz', 'malformed-escape'],
    ['/%4', 'malformed-escape'],
    ['/a%', 'malformed-escape'],
    ['/a%?x', 'malformed-escape'],
    ['/a%4?x', 'malformed-escape'],
    ['/%g1', 'malformed-escape'],
    ['/%-1', 'malformed-escape'],
    ['/admin%2fx', 'encoded-separator'],
    ['/admin%2Fx', 'encoded-separator'],
    ['/admin%5cx', 'encoded-separator'],
    ['/admin%5Cx', 'encoded-separator'],
    ['/a\\b', 'backslash'],
    ['/\\', 'backslash'],
    ['/a\u0000', 'nul'],
    ['/a%00', 'nul'],
    ['/a?\u0000', 'nul'],
    ['/a b', 'invalid-character'],
    ['/a\tb', 'invalid-character'],
    ['/a\nb', 'invalid-character'],
    ['/a\u007f', 'invalid-character'],
    ['/caf\u00e9', 'invalid-character'],
    ['/\u2028', 'invalid-character'],
    ['/a?b c', 'invalid-character'],
    ['//', 'empty-segment'],
    ['//x', 'empty-segment'],
    ['/a//b', 'empty-segment'],
    ['/a//', 'empty-segment'],
    ['/.', 'dot-segment'],
    ['/..', 'dot-segment'],
    ['/./', 'dot-segment'],
    ['/a/.', 'dot-segment'],
    ['/a/..', 'dot-segment'],
    ['/a/./b', 'dot-segment'],
    ['/a/../b', 'dot-segment'],
    ['/a/%2e/b', 'dot-segment'],
    ['/a/%2e%2e/b', 'dot-segment'],
    ['/a/%2E%2e/b', 'dot-segment'],
    ['/a/.%2e/b', 'dot-segment'],
    ['/a/%2e./b', 'dot-segment'],
    ['/a/%2e%2e', 'dot-segment'],
    ['/a/%2e?x', 'dot-segment'],
    ['/a/..;/b', 'dot-segment'],
    ['/a/.;x/b', 'dot-segment'],
    ['/a/%2e%2e;/b', 'dot-segment'],
    ['/..;', 'dot-segment'],
    // Path parameters: stripped by Tomcat, Jetty, Spring and Shiro before routing.
    ['/x;jsessionid=1', 'invalid-character'],
    ['/x/;a', 'invalid-character'],
    ['/admin;x=1', 'invalid-character'],
    ['/admin;/users', 'invalid-character'],
    // Escapes that are not UTF-8 (overlong `.`), and compatibility spellings of `/`, `\` and dots.
    ['/%c0%ae%c0%ae/admin', 'malformed-escape'],
    ['/%ff', 'malformed-escape'],
    ['/%e0%80%af', 'malformed-escape'],
    ['/admin%ef%bc%8fx', 'encoded-separator'],
    ['/a%EF%BC%BCb', 'encoded-separator'],
    ['/%ef%bc%8e%ef%bc%8e/admin', 'dot-segment'],
    ['/a/.%ef%bc%8e/b', 'dot-segment'],
    ['/%e2%80%a5/admin', 'dot-segment'],
    ['/%ef%b9%92', 'dot-segment'],
    // Double encoding: what an upstream decoding twice would walk or split.
    ['/%252e%252e/admin', 'dot-segment'],
    ['/a/%252E/b', 'dot-segment'],
    ['/admin%252fx', 'encoded-separator'],
    ['/a%255cb', 'encoded-separator'],
    ['/a%2500', 'nul'],
    ['/%25252e%25252e/x', 'dot-segment'],
    ['/a/..%3b/b', 'dot-segment'],
    ['/a/%2e%3Bx/b', 'dot-segment'],
    ['/%3b', 'encoded-separator'],
    ['/admin%3bx', 'encoded-separator'],
    ['/admin/%3Bx', 'encoded-separator'],
    ['/a%253bb', 'encoded-separator'],
    ['/%25/%252f', 'encoded-separator'],
    ['/%25%252f', 'encoded-separator'],
    ['/a%25%32%66b', 'encoded-separator'],
    ['/%25%32%65', 'dot-segment'],
    ['/%25EF%25BC%258Fx', 'encoded-separator']
  ]
  for (const [raw, reason] of table) {
    t.same(normalizeRequestTarget(raw), { ok: false, reason }, show(raw))
  }
})

t.test('the common path is returned as is', async (t) => {
  const raw = '/api/v1/items/42'
  const result = normalizeRequestTarget(raw + '?page=2')
  t.same(result, { ok: true, path: raw, search: '?page=2' })
})

// Pieces that make interesting paths; arbitrary strings alone rarely start with `/`.
const piece = fc.constantFrom(
  '/', '/', '/', '.', '..', '%2e', '%2E', '%', '%2f', '%5C', '%00', '%61', '%7e', '%7E', '%20', '%2a',
  '%zz', '%4', 'a', 'A', 'z', '~', '-', '_', ';', '?', '#', '\\', '\u0000', ' ', '\u00e9', '%c3%a9', '*', '@', ':'
)
const target = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string().map((s) => '/' + s),
  fc.array(piece, { maxLength: 24 }).map((parts) => '/' + parts.join(''))
)

t.test('property: never throws; results are normalized and stable', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    const result = normalizeRequestTarget(raw)
    if (!result.ok) return /^[a-z]+(-[a-z]+)*$/.test(result.reason)
    const { path, search } = result
    if (path[0] !== '/') return false
    if (search !== '' && (search[0] !== '?' || !raw.endsWith(search))) return false
    const segments = path.slice(1).split('/')
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i] as string
      if (s === '.' || s === '..') return false
      if (s === '' && i !== segments.length - 1) return false
    }
    if (/%(?![0-9A-F]{2})/.test(path)) return false
    if (/[\\\u0000-\u0020\u007f-\uffff#?]/.test(path)) return false
    const again = normalizeRequestTarget(path + search)
    return again.ok && again.path === path && again.search === search
  }), { numRuns: 20_000 })
  t.pass('20000 runs')
})

t.test('property: decoding once agrees with decodeURIComponent on what was decoded', async (t) => {
  // The normalized path names the same resource: fully decoding both gives the same text.
  fc.assert(fc.property(fc.array(piece, { maxLength: 16 }), (parts) => {
    const raw = '/' + parts.join('')
    const result = normalizeRequestTarget(raw)
    if (!result.ok) return true
    const pathOf = (s: string) => s.split('?')[0] as string
    let a: string, b: string
    try { a = decodeURIComponent(pathOf(raw)) } catch { return true } // not UTF-8: nothing to compare
    try { b = decodeURIComponent(result.path) } catch { return false }
    return a === b
  }), { numRuns: 10_000 })
  t.pass('10000 runs')
})
