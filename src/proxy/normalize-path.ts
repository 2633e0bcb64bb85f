/**
 * The request target as it is decided on and as it is forwarded: one string for both, so
 * the rules never see a path the upstream reads differently (SPEC "Request handling").
 *
 * Percent-escapes of unreserved characters (RFC 3986 §2.3) are decoded once, because
 * `/%61dmin` and `/admin` are the same resource to every upstream. Every other escape is
 * kept, with its hex uppercased, so there is exactly one spelling of each path. What an
 * upstream might resolve to a different path than the one we decided on is refused
 * outright: encoded separators, backslashes, NUL, empty segments and dot segments.
 */

export type NormalizeResult =
  | { ok: true; path: string; search: string }
  | { ok: false; reason: NormalizeRejection }

/** Why a request target was refused (400), as kebab-case codes for logs. */
export type NormalizeRejection =
  | 'not-origin-form' // absolute-form (`http://...`), asterisk-form (`*`), authority-form, empty
  | 'fragment' // `#` never belongs in a request target
  | 'malformed-escape' // `%` not followed by two hex digits
  | 'encoded-separator' // `%2F` or `%5C`: a segment that an upstream may split
  | 'backslash' // raw `\`: a separator on some servers
  | 'nul' // raw NUL or `%00`
  | 'invalid-character' // raw control character, space or byte > 0x7e
  | 'empty-segment' // `//`: merged by some servers, not by others
  | 'dot-segment' // `.` or `..` (any spelling), also `..;x` which Tomcat and Jetty resolve

const SLASH = 0x2f
const PERCENT = 0x25
const QUESTION = 0x3f
const HASH = 0x23
const BACKSLASH = 0x5c
const DOT = 0x2e
const SEMICOLON = 0x3b

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

  for (let i = 1; i <= end; i++) {
    const c = i < end ? rawUrl.charCodeAt(i) : SLASH // a virtual `/` closes the last segment

    if (c === SLASH) {
      if (segLen === 0) {
        // Only the last segment may be empty: `/` and `/admin/` are fine, `//` is not.
        if (i < end) return { ok: false, reason: 'empty-segment' }
      } else if (segDots && segLen <= 2) {
        return { ok: false, reason: 'dot-segment' }
      }
      segLen = 0
      segDots = true
      continue
    }

    if (c === PERCENT) {
      const decoded = decodeEscape(rawUrl, i, end)
      if (typeof decoded === 'string') return { ok: false, reason: decoded }
      if (needsRewrite(rawUrl, i)) {
        out = (out ?? '') + rawUrl.slice(copiedUpTo, i) + rewriteEscape(rawUrl, i, decoded)
        copiedUpTo = i + 3
      }
      segLen++
      if (decoded !== DOT) segDots = false
      i += 2
      continue
    }

    const reason = rawCharacterProblem(c)
    if (reason !== undefined) return { ok: false, reason }
    if (c === SEMICOLON) {
      // `..;x` is `..` to Tomcat and Jetty: refuse it like a plain dot segment.
      if (segDots && segLen > 0 && segLen <= 2) return { ok: false, reason: 'dot-segment' }
      segDots = false
    } else if (c !== DOT) {
      segDots = false
    }
    segLen++
  }

  const path = out === undefined ? rawUrl.slice(0, end) : out + rawUrl.slice(copiedUpTo, end)
  return { ok: true, path, search }
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

function rawCharacterProblem (c: number): NormalizeRejection | undefined {
  if (isVisibleAscii(c)) {
    if (c === BACKSLASH) return 'backslash'
    if (c === HASH) return 'fragment'
    return undefined
  }
  return c === 0 ? 'nul' : 'invalid-character'
}
