/**
 * Property-based tests of the request-target normalizer (src/proxy/normalize-path.ts), beyond
 * test/proxy/normalize-path.test.ts: every accepted path must read the same to each kind of
 * upstream we know of — the WHATWG URL parser that builds the forwarded request, a server that
 * decodes once (most), one that decodes twice (IIS of old), one that strips path parameters
 * (Tomcat, Jetty, Spring), and one that applies Unicode compatibility normalization.
 */
import fc from 'fast-check'
import t from 'tap'
import { normalizeRequestTarget } from '../../src/proxy/normalize-path.js'

// Mostly pieces a real path is made of, with the tricky ones mixed in, so that a good share of
// the targets is accepted and the properties about accepted paths have something to check.
const benign = fc.constantFrom('/', '/', '/', 'a', 'b', 'admin', 'A', '~', '-', '_', '.', '...', ':', '@', '!', '$', '&', "'", '(', ')', '*', '+', ',', '=',
  '%61', '%7e', '%7E', '%20', '%2a', '%25', '%c3%a9', '%C3%A9', '%ef%bd%81', '|', '^', '[', ']',
  // Escaped hex digits: `%25%32%66` is forwarded as `%252f`.
  '2', '5', 'e', 'f', 'c', '%32', '%35', '%36', '%65', '%45', '%66', '%46', '%63', '%62')
const tricky = fc.constantFrom(
  '..', ';', ';x=1', '"', '<', '>', '`', '{', '}', '\\', '#', '?', ' ', '\t', '\u0000', '\u00e9', '\uff0f',
  '%', '%2', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '%00', '%3b', '%3B', '%3f', '%23', '%252e', '%252f', '%255c', '%2500', '%25252e',
  '%zz', '%u002e', '%c0%ae', '%c0%af', '%e0%80%ae', '%ff', '%ef%bc%8f', '%ef%bc%8e', '%ef%bc%bc', '%e2%80%a5', '%ef%b9%92', '%e3%80%82'
)
const piece = fc.oneof({ weight: 5, arbitrary: benign }, { weight: 1, arbitrary: tricky })
const target = fc.oneof(
  { weight: 6, arbitrary: fc.array(piece, { maxLength: 20 }).map((parts) => '/' + parts.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((s) => '/' + s) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }
)

const RUNS = 1000

/** Decodes %XX escapes to bytes and then UTF-8, leniently (undecodable input unchanged). */
function decodeOnce (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}
function pathOf (raw: string): string {
  const q = raw.indexOf('?')
  return q === -1 ? raw : raw.slice(0, q)
}
/** No segment of `segments` walks or splits: no `.`/`..`, no `/`, `\` or NUL inside. */
function walksOrSplits (segments: string[]): boolean {
  return segments.some((s) => s === '.' || s === '..' || s.includes('/') || s.includes('\\') || s.includes('\u0000'))
}
const accepted = (raw: string): string | null => {
  const r = normalizeRequestTarget(raw)
  return r.ok ? r.path : null
}

t.test('the forwarded request line is the decided path (WHATWG URL parser)', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    const path = accepted(raw)
    if (path === null) return true
    return new URL(path, 'http://upstream.invalid').pathname === path
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})

t.test('an upstream that decodes once sees the same segments, none walking or splitting', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    const path = accepted(raw)
    if (path === null) return true
    const segments = path.slice(1).split('/').map(decodeOnce)
    return segments.length === path.slice(1).split('/').length && !walksOrSplits(segments)
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})

t.test('an upstream that decodes twice finds no dot segment and no separator either', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    const path = accepted(raw)
    if (path === null) return true
    return !walksOrSplits(path.slice(1).split('/').map((s) => decodeOnce(decodeOnce(s))))
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})

t.test('an upstream that strips path parameters sees the path we decided on', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    const path = accepted(raw)
    if (path === null) return true
    // Tomcat, Jetty, Spring and Shiro cut `;...` from each segment before routing; some
    // stacks decode `%3B` first.
    return !decodeOnce(path).includes(';') && path.split('/').map((s) => s.split(';')[0]).join('/') === path
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})

t.test('an upstream applying NFKC finds no separator and no dot segment', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    const path = accepted(raw)
    if (path === null) return true
    return !walksOrSplits(path.slice(1).split('/').map((s) => decodeOnce(s).normalize('NFKC')))
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})

t.test('normalization is idempotent and never throws, and refusals have a reason', async (t) => {
  fc.assert(fc.property(target, fc.string({ maxLength: 12 }), (raw, query) => {
    const r = normalizeRequestTarget(raw + '?' + query.replace(/[^\x21-\x7e]/g, '').replace(/#/g, ''))
    if (!r.ok) return /^[a-z]+(-[a-z]+)*$/.test(r.reason)
    const again = normalizeRequestTarget(r.path + r.search)
    return again.ok && again.path === r.path && again.search === r.search && pathOf(r.path + r.search) === r.path
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})

t.test('decoding once names the same resource as the raw target did', async (t) => {
  fc.assert(fc.property(target, (raw) => {
    const path = accepted(raw)
    if (path === null) return true
    // Every decoding the normalizer did (unreserved characters) or undid (the characters the URL
    // parser would encode) is invisible to an upstream that decodes.
    return decodeOnce(path) === decodeOnce(pathOf(raw))
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs`)
})
