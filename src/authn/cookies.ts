/**
 * Moatless's cookies. Host-only, HttpOnly, SameSite=Lax; Secure and `__Host-` prefixed on
 * https origins. Values are sealed and name the origin they were issued for, so a cookie
 * tossed from one origin to another is no session there.
 */
export interface CookieNames { session: string; login: string }

export function cookieNames (secure: boolean): CookieNames {
  return secure
    ? { session: '__Host-moatless_session', login: '__Host-moatless_login' }
    : { session: 'moatless_session', login: 'moatless_login' }
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

/** The Cookie header without Moatless's cookies; undefined when nothing is left. */
export function stripOurCookies (header: string): string | undefined {
  if (!header.toLowerCase().includes('moatless_')) return header
  const kept: string[] = []
  for (const part of header.split(';')) {
    const p = part.trim()
    if (p.length === 0) continue
    const eq = p.indexOf('=')
    const name = eq === -1 ? p : p.slice(0, eq)
    if (!ALL_COOKIE_NAMES.has(name.trim().toLowerCase())) kept.push(p)
  }
  return kept.length > 0 ? kept.join('; ') : undefined
}
