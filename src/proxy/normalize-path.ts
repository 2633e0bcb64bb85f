/**
 * The request target as it is decided on and as it is forwarded: one string for both, so
 * the rules never see a path the upstream reads differently (SPEC "Request handling").
 *
 * Percent-escapes of unreserved characters (RFC 3986 §2.3) are decoded once, because
 * `/%61dmin` and `/admin` are the same resource to every upstream. Every other escape is
 * kept, with its hex uppercased, so there is exactly one spelling of each path. What an
 * upstream might resolve to a different path than the one we decided on is refused
 * outright: encoded separators, backslashes, NUL, empty segments and dot segments.
 *
 * More rules keep the decided path and the forwarded path one string:
 * - `"`, `<`, `>`, `` ` ``, `{` and `}` are percent-encoded here, because the WHATWG URL parser
 *   that builds the upstream request encodes them anyway: `/a"b` was decided as `/a"b` but
 *   forwarded as `/a%22b`, which `/a%22b` (decided as such) also reaches.
 * - A `;` is refused, raw or as `%3B`: Tomcat, Jetty, Spring and Shiro strip path parameters,
 *   so `/admin;x=1` is `/admin` to them while no rule on `/admin/**` matched it (CVE-2020-1957),
 *   and some stacks decode first (Shiro CVE-2020-13933, `/admin/%3bx`).
 * - A doubly encoded `.`, `/`, `\` or NUL (`%252e`) is refused like its single encoding.
 * - Escapes of non-ASCII bytes must be UTF-8 (overlong `%C0%AE` is `.` to old decoders), and a
 *   segment whose compatibility form (NFKC) holds a `/` or `\` or is a dot segment (fullwidth
 *   `%EF%BC%8F` is `/`, `%EF%BC%8E` is `.`) is refused like its ASCII spelling.
 */

export type NormalizeResult =
  | { ok: true; path: string; search: string }
  | { ok: false; reason: NormalizeRejection }

/** Why a request target was refused (400), as kebab-case codes for logs. */
export type NormalizeRejection =
  | 'not-origin-form' // absolute-form (`http://...`), asterisk-form (`*`), authority-form, empty
  | 'fragment' // `#` never belongs in a request target
  | 'malformed-escape' // `%` not followed by two hex digits, or escapes that are not UTF-8
  | 'encoded-separator' // `%2F`, `%5C` or `%3B`: a segment that an upstream may split
  | 'backslash' // raw `\`: a separator on some servers
  | 'nul' // raw NUL or `%00`
  | 'invalid-character' // raw control character, space, byte > 0x7e, or `;` (a path parameter)
  | 'empty-segment' // `//`: merged by some servers, not by others
  | 'dot-segment' // `.` or `..` (any spelling), also `..;x` which Tomcat and Jetty resolve

const SLASH = 0x2f
const PERCENT = 0x25
const QUESTION = 0x3f
const HASH = 0x23
const BACKSLASH = 0x5c
const DOT = 0x2e
const SEMICOLON = 0x3b

/** Raw characters the WHATWG URL parser percent-encodes in a path (`"<>\`{}`): encoded here first. */
function encodedByUrlParser (c: number): boolean {
  return c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60 || c === 0x7b || c === 0x7d
}

function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const lower = c | 0x20
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10
  return -1
}

function isUnreserved (c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === DOT || c === 0x5f || c === 0x7e
}

/** Raw characters allowed in a request target: visible ASCII, no space, no DEL. */
function isVisibleAscii (c: number): boolean {
  return c > 0x20 && c < 0x7f
}

const HEX = '0123456789ABCDEF'

export function normalizeRequestTarget (rawUrl: string): NormalizeResult {
  if (rawUrl.charCodeAt(0) !== SLASH) return { ok: false, reason: 'not-origin-form' }

  let end = rawUrl.indexOf('?')
  if (end === -1) end = rawUrl.length
  let search = ''
  if (end < rawUrl.length) {
    search = rawUrl.slice(end)
    // The query is forwarded verbatim; it only has to be a well-formed part of the target.
    for (let i = 1; i < search.length; i++) {
      const c = search.charCodeAt(i)
      if (c === HASH) return { ok: false, reason: 'fragment' }
      if (!isVisibleAscii(c)) return { ok: false, reason: c === 0 ? 'nul' : 'invalid-character' }
    }
  }

  // `out` stays undefined until an escape has to be rewritten: the common path is one slice.
  let out: string | undefined
  let copiedUpTo = 0
  // The current segment as decoded: its length and whether it is all dots.
  let segLen = 0
  let segDots = true
  // Where the current segment starts in rawUrl, and whether it escapes a non-ASCII byte.
  let segStart = 1
  let segHigh = false
  // Whether the current segment holds an escaped `%` (double encoding).
  let segPercent = false

  for (let i = 1; i <= end; i++) {
    const c = i < end ? rawUrl.charCodeAt(i) : SLASH // a virtual `/` closes the last segment

    if (c === SLASH) {
      if (segLen === 0) {
        // Only the last segment may be empty: `/` and `/admin/` are fine, `//` is not.
        if (i < end) return { ok: false, reason: 'empty-segment' }
      } else if (segDots && segLen <= 2) {
        return { ok: false, reason: 'dot-segment' }
      } else if (segHigh || segPercent) {
        const seg = rawUrl.slice(segStart, i)
        // Double encoding is judged on the segment as forwarded: `%25%32%66` is sent as `%252f`.
        const sofar = segPercent ? (out ?? '') + rawUrl.slice(copiedUpTo, i) : ''
        const problem = (segHigh ? unicodeSegmentProblem(seg) : undefined) ??
          (segPercent ? doubleEncodingProblem(sofar.slice(sofar.lastIndexOf('/') + 1)) : undefined)
        if (problem !== undefined) return { ok: false, reason: problem }
      }
      segLen = 0
      segDots = true
      segStart = i + 1
      segHigh = false
      segPercent = false
      continue
    }

    if (c === PERCENT) {
      const decoded = decodeEscape(rawUrl, i, end)
      if (typeof decoded === 'string') return { ok: false, reason: decoded }
      if (needsRewrite(rawUrl, i)) {
        out = (out ?? '') + rawUrl.slice(copiedUpTo, i) + rewriteEscape(rawUrl, i, decoded)
        copiedUpTo = i + 3
      }
      if (decoded === -1 && rawUrl.charCodeAt(i + 1) === 0x33 && (rawUrl.charCodeAt(i + 2) | 0x20) === 0x62) {
        // `%3B` is `;` to a server that decodes before it strips path parameters (Apache
        // Shiro CVE-2020-13933: `/admin/%3bx`); `..%3B` is `..;` there.
        return { ok: false, reason: segDots && segLen > 0 && segLen <= 2 ? 'dot-segment' : 'encoded-separator' }
      }
      segLen++
      if (decoded !== DOT) segDots = false
      if (decoded === -1 && hexValue(rawUrl.charCodeAt(i + 1)) >= 8) segHigh = true
      if (decoded === -1 && rawUrl.charCodeAt(i + 1) === 0x32 && rawUrl.charCodeAt(i + 2) === 0x35) segPercent = true
      i += 2
      continue
    }

    const reason = rawCharacterProblem(c)
    if (reason !== undefined) return { ok: false, reason }
    if (c === SEMICOLON) {
      // `..;x` is `..` to Tomcat and Jetty: refuse it like a plain dot segment. Any other
      // path parameter is refused too: those servers strip it before routing.
      return { ok: false, reason: segDots && segLen > 0 && segLen <= 2 ? 'dot-segment' : 'invalid-character' }
    }
    if (c !== DOT) segDots = false
    if (encodedByUrlParser(c)) {
      out = (out ?? '') + rawUrl.slice(copiedUpTo, i) + '%' + HEX[c >> 4] + HEX[c & 15]
      copiedUpTo = i + 1
    }
    segLen++
  }

  const path = out === undefined ? rawUrl.slice(0, end) : out + rawUrl.slice(copiedUpTo, end)
  return { ok: true, path, search }
}

/**
 * Double encoding (`%252e%252e`, `%252f`): an upstream that decodes twice (IIS's CVE-2001-0333
 * and its many heirs) would walk or split where we saw one segment. `segment` is as forwarded
 * and holds a `%25`; each further decoding of `%25` is checked like the first decoding was.
 */
function doubleEncodingProblem (segment: string): NormalizeRejection | undefined {
  let s = segment
  while (s.includes('%25')) {
    s = s.replace(/%25/g, '%')
    if (/%(2f|5c|3b)/i.test(s)) return 'encoded-separator'
    if (s.includes('%00')) return 'nul'
    const dots = s.replace(/%2e/gi, '.')
    if (dots === '.' || dots === '..') return 'dot-segment'
    if (/%[89a-f][0-9a-f]/i.test(s) && !/%(?![0-9a-f]{2})/i.test(s)) {
      const problem = unicodeSegmentProblem(s)
      if (problem !== undefined && problem !== 'malformed-escape') return problem
    }
  }
  return undefined
}

/**
 * Validates the escape at `i`: the decoded byte when it is unreserved (to be decoded), -1
 * when it is kept as an escape, or the rejection.
 */
function decodeEscape (s: string, i: number, end: number): number | NormalizeRejection {
  if (i + 2 >= end) return 'malformed-escape'
  const hi = hexValue(s.charCodeAt(i + 1))
  const lo = hexValue(s.charCodeAt(i + 2))
  if (hi === -1 || lo === -1) return 'malformed-escape'
  const byte = hi * 16 + lo
  if (byte === SLASH || byte === BACKSLASH) return 'encoded-separator'
  if (byte === 0) return 'nul'
  return isUnreserved(byte) ? byte : -1
}

/** Whether the (valid) escape at `i` differs from its normalized form. */
function needsRewrite (s: string, i: number): boolean {
  const hi = s.charCodeAt(i + 1)
  const lo = s.charCodeAt(i + 2)
  const byte = hexValue(hi) * 16 + hexValue(lo)
  return isUnreserved(byte) || (hi >= 0x61 && hi <= 0x66) || (lo >= 0x61 && lo <= 0x66)
}

function rewriteEscape (s: string, i: number, decoded: number): string {
  if (decoded !== -1) return String.fromCharCode(decoded)
  const byte = hexValue(s.charCodeAt(i + 1)) * 16 + hexValue(s.charCodeAt(i + 2))
  return '%' + HEX[byte >> 4] + HEX[byte & 15]
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A segment with escaped non-ASCII bytes (`segment` as written, escapes valid): refused when
 * the bytes are not UTF-8, or when the segment's NFKC form splits it (`/`, `\`) or makes it a
 * dot segment, which an upstream normalizing Unicode would act on.
 */
function unicodeSegmentProblem (segment: string): NormalizeRejection | undefined {
  const bytes: number[] = []
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i)
    if (c === PERCENT) {
      bytes.push(hexValue(segment.charCodeAt(i + 1)) * 16 + hexValue(segment.charCodeAt(i + 2)))
      i += 2
    } else {
      bytes.push(c)
    }
  }
  let text: string
  try {
    text = UTF8.decode(Uint8Array.from(bytes))
  } catch {
    return 'malformed-escape'
  }
  const compatible = text.normalize('NFKC')
  if (compatible.includes('/') || compatible.includes('\\')) return 'encoded-separator'
  if (compatible === '.' || compatible === '..') return 'dot-segment'
  return undefined
}

function rawCharacterProblem (c: number): NormalizeRejection | undefined {
  if (isVisibleAscii(c)) {
    if (c === BACKSLASH) return 'backslash'
    if (c === HASH) return 'fragment'
    return undefined
  }
  return c === 0 ? 'nul' : 'invalid-character'
}
