/**
 * Moatless's cookies. Host-only, HttpOnly, SameSite=Lax; Secure and `__Host-` prefixed on
 * https origins. Values are sealed and name the origin they were issued for, so a cookie
 * tossed from one origin to another is no session there.
 */
export interface CookieNames { session: string; login: string }

const SECURE_NAMES: CookieNames = Object.freeze({ session: '__Host-moatless_session', login: '__Host-moatless_login' })
const PLAIN_NAMES: CookieNames = Object.freeze({ session: 'moatless_session', login: 'moatless_login' })

/** The names for an https origin (secure) or an http one; the same frozen object every time (read on every request). */
export function cookieNames (secure: boolean): CookieNames {
  return secure ? SECURE_NAMES : PLAIN_NAMES
}

/** Every name we ever set (lowercase), to strip from upstream requests whatever the scheme. */
export const ALL_COOKIE_NAMES: ReadonlySet<string> = new Set([
  '__host-moatless_session', '__host-moatless_login', 'moatless_session', 'moatless_login'
])

export function setCookie (name: string, value: string, opts: { secure: boolean; maxAgeSec?: number }): string {
  let s = `${name}=${value}; Path=/; HttpOnly; SameSite=Lax`
  if (opts.secure) s += '; Secure'
  if (opts.maxAgeSec !== undefined) s += `; Max-Age=${Math.max(0, Math.floor(opts.maxAgeSec))}`
  return s
}

export function clearCookie (name: string, secure: boolean): string {
  return setCookie(name, '', { secure, maxAgeSec: 0 })
}

/** All values of cookie `name` in a Cookie header (a browser may send several). */
export function cookieValues (header: string | undefined, name: string): string[] {
  if (header === undefined || header.length === 0) return []
  const out: string[] = []
  let i = 0
  while (i < header.length) {
    let end = header.indexOf(';', i)
    if (end === -1) end = header.length
    let start = i
    while (start < end && header.charCodeAt(start) === 32) start++
    const eq = header.indexOf('=', start)
    if (eq !== -1 && eq < end && eq - start === name.length && header.startsWith(name, start)) {
      out.push(header.slice(eq + 1, end).trim())
    }
    i = end + 1
  }
  return out
}

/** Lengths of the names in ALL_COOKIE_NAMES: most cookies are ruled out without a string made. */
const OUR_NAME_LENGTHS: ReadonlySet<number> = new Set([...ALL_COOKIE_NAMES].map((n) => n.length))
/** The one part every name of ours has, in any case (names are compared case-insensitively). */
const OURS_ANYWHERE = /moatless_/i

/**
 * The Cookie header without Moatless's cookies; undefined when nothing is left. A cookie is
 * ours when its name, trimmed, is one of ALL_COOKIE_NAMES in any letter case. Every other
 * cookie is kept as it was (trimmed), in order, joined by `; `. Runs on every forwarded request
 * with a cookie: no lowercased copy of the header, no array.
 */
export function stripOurCookies (header: string): string | undefined {
  if (!OURS_ANYWHERE.test(header)) return header
  let out: string | undefined
  let i = 0
  const n = header.length
  while (i <= n) {
    let end = header.indexOf(';', i)
    if (end === -1) end = n
    const part = header.slice(i, end).trim()
    i = end + 1
    if (part.length === 0) continue
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim()
    if (OUR_NAME_LENGTHS.has(name.length) && ALL_COOKIE_NAMES.has(name.toLowerCase())) continue
    out = out === undefined ? part : `${out}; ${part}`
  }
  return out
}
