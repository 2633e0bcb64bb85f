/**
 * Path globs, compiled once into segment matchers (no RegExp: a glob is written by an
 * operator but matched against paths written by anyone, and backtracking regexes are a
 * denial-of-service risk there).
 *
 * - a literal segment matches itself, case-sensitively;
 * - `*` is exactly one segment, or part of one (`*.css`, `v*-beta`); it never crosses `/`;
 * - `**` is any number of segments, zero included, and must be a whole segment;
 * - `/admin/**` matches `/admin`, `/admin/` and everything below it.
 *
 * A path's trailing `/` is ignored unless the glob itself ends with `/` (`/admin` matches
 * `/admin/` — most upstreams serve the same thing for both, and a deny rule must not be
 * sidestepped by a slash). Globs are checked against the normalized path syntax
 * (proxy/normalize-path): a glob that no normalized path can match is a compile error.
 */
import type { CompileContext, ConfigPath } from './types.js'

const LITERAL = 0
const PATTERN = 1
const GLOBSTAR = 2

type Segment =
  | { kind: typeof LITERAL; text: string }
  | { kind: typeof PATTERN; parts: string[]; minLength: number }
  | { kind: typeof GLOBSTAR }

export interface Glob {
  readonly source: string
  matches (path: string): boolean
}

const SLASH = 0x2f

function isUnreservedByte (c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
}

const UPPER_HEX = /^[0-9A-F]{2}$/

/** Why `segment` (no `*` handling needed) can never appear in a normalized path, if so. */
function segmentProblem (segment: string): string | undefined {
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) return 'contains a space or a control or non-ASCII character; percent-encode it (e.g. %20)'
    if (c === 0x5c) return 'contains \\ (requests with a backslash are refused)'
    if (c === 0x3f || c === 0x23) return `contains ${String.fromCharCode(c)}; globs match the path only, not the query`
    if (c === 0x3b) return 'contains ; (requests with path parameters are refused, so this glob could never match)'
    if (c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60 || c === 0x7b || c === 0x7d) {
      const ch = String.fromCharCode(c)
      return `contains ${ch}; requests carry it percent-encoded, write %${c.toString(16).toUpperCase()}`
    }
    if (c === 0x25) {
      const hex = segment.slice(i + 1, i + 3)
      if (!UPPER_HEX.test(hex)) {
        return /^[0-9a-fA-F]{2}$/.test(hex) ? `write %${hex} in upper case (%${hex.toUpperCase()}), as paths are normalized` : 'contains a malformed %-escape'
      }
      const byte = parseInt(hex, 16)
      if (byte === 0x2f || byte === 0x5c || byte === 0 || byte === 0x3b) return `contains %${hex} (requests with it are refused)`
      if (isUnreservedByte(byte)) return `write %${hex} as ${String.fromCharCode(byte)}, as paths are normalized`
      i += 2
    }
  }
  if (segment === '.' || segment === '..') return 'contains a dot segment (requests with one are refused)'
  return undefined
}

/** Compiles one glob, or returns why it is invalid. */
export function compileGlob (source: string): Glob | { error: string } {
  if (source.charCodeAt(0) !== SLASH) return { error: `invalid glob "${source}": must start with /` }
  const raw = source.split('/').slice(1)
  const trailingSlash = source.length > 1 && source.endsWith('/')
  const segments: Segment[] = []
  for (let i = 0; i < raw.length; i++) {
    const s = raw[i] as string
    if (s === '' && !(i === raw.length - 1)) return { error: `invalid glob "${source}": empty segment (//); requests with one are refused` }
    if (s === '**') {
      if (segments.at(-1)?.kind !== GLOBSTAR) segments.push({ kind: GLOBSTAR })
      continue
    }
    if (s.includes('**')) return { error: `invalid glob "${source}": ** must be a whole segment (/**/ or /**)` }
    const problem = segmentProblem(s)
    if (problem !== undefined) return { error: `invalid glob "${source}": ${problem}` }
    if (s.includes('*')) {
      const parts = s.split('*')
      segments.push({ kind: PATTERN, parts, minLength: parts.reduce((n, p) => n + p.length, 0) })
    } else {
      segments.push({ kind: LITERAL, text: s })
    }
  }
  // `/` alone: raw is [''] with trailingSlash false; it is the root and needs an empty path.
  if (source === '/') return Object.freeze({ source, matches: (path: string) => path === '/' })
  return Object.freeze({ source, matches: (path: string) => matchSegments(segments, trailingSlash, path) })
}

function segmentMatches (seg: Segment, path: string, start: number, end: number): boolean {
  if (seg.kind === LITERAL) {
    return end - start === seg.text.length && path.startsWith(seg.text, start)
  }
  if (seg.kind === GLOBSTAR) return true
  if (end - start < seg.minLength) return false
  const parts = seg.parts
  const first = parts[0] as string
  const last = parts[parts.length - 1] as string
  if (!path.startsWith(first, start) || !path.startsWith(last, end - last.length)) return false
  // Middle parts, leftmost first: with only `*` wildcards, leftmost is never wrong.
  let at = start + first.length
  const limit = end - last.length
  for (let k = 1; k < parts.length - 1; k++) {
    const part = parts[k] as string
    const found = path.indexOf(part, at)
    if (found === -1 || found + part.length > limit) return false
    at = found + part.length
  }
  return true
}

/**
 * Segment-wise wildcard matching: `**` remembers where it started and, on a mismatch,
 * absorbs one more segment (the classic two-pointer algorithm; O(segments × globs) at
 * worst, no recursion).
 */
function matchSegments (segments: readonly Segment[], trailingSlash: boolean, path: string): boolean {
  let end = path.length
  if (!trailingSlash && end > 0 && path.charCodeAt(end - 1) === SLASH) end--
  // Segments of path[0, end): `pos` is where the current one starts; pos > end: none left.
  let pos = 1
  const n = segments.length
  let gi = 0
  let starGi = -1
  let starPos = 0
  while (pos <= end) {
    let segEnd = path.indexOf('/', pos)
    if (segEnd === -1 || segEnd > end) segEnd = end
    const seg = segments[gi]
    if (seg !== undefined && seg.kind === GLOBSTAR) {
      starGi = gi
      starPos = pos
      gi++
      continue
    }
    if (seg !== undefined && segmentMatches(seg, path, pos, segEnd)) {
      gi++
      pos = segEnd + 1
      continue
    }
    if (starGi === -1) return false
    // Let the last `**` take one more segment and retry from there.
    let skipEnd = path.indexOf('/', starPos)
    if (skipEnd === -1 || skipEnd > end) skipEnd = end
    starPos = skipEnd + 1
    pos = starPos
    gi = starGi + 1
  }
  while (gi < n && (segments[gi] as Segment).kind === GLOBSTAR) gi++
  return gi === n
}

export interface GlobList {
  readonly sources: readonly string[]
  matches (path: string): boolean
  /** The first glob that matches, for explanations. */
  firstMatch (path: string): string | undefined
}

/** Compiles `sources`, recording each invalid glob at `path`/index. */
export function compileGlobList (sources: readonly string[], path: ConfigPath, ctx: CompileContext): GlobList | undefined {
  const globs: Glob[] = []
  let ok = true
  sources.forEach((source, i) => {
    const glob = compileGlob(source)
    if ('error' in glob) {
      ctx.errors.push({ path: [...path, i], message: glob.error })
      ok = false
    } else {
      globs.push(glob)
    }
  })
  if (!ok) return undefined
  // The match functions themselves, not the globs holding them: one object fewer to read per glob.
  const matchers = globs.map((g) => g.matches)
  return Object.freeze({
    sources: Object.freeze([...sources]),
    matches: (p: string) => {
      for (let i = 0; i < matchers.length; i++) if ((matchers[i] as Glob['matches'])(p)) return true
      return false
    },
    firstMatch: (p: string) => globs.find((g) => g.matches(p))?.source
  })
}
