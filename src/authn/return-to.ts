/**
 * `rd` return targets. Only absolute URLs on a configured app origin are accepted; anything
 * a browser and the URL parser might read differently (whitespace, control characters,
 * backslashes, userinfo) is refused outright rather than cleaned up.
 */
export interface ReturnTo { origin: string; path: string }

export function parseReturnTo (rd: unknown, appOrigins: ReadonlySet<string>): ReturnTo | null {
  if (typeof rd !== 'string' || rd.length === 0 || rd.length > 4096) return null
  for (let i = 0; i < rd.length; i++) {
    const c = rd.charCodeAt(i)
    if (c <= 0x20 || c === 0x5c /* \ */ || c >= 0x7f) return null
  }
  let url: URL
  try { url = new URL(rd) } catch { return null }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null
  if (url.username !== '' || url.password !== '') return null
  if (!appOrigins.has(url.origin)) return null
  // The text itself must start with the origin: no parser-normalized surprises.
  if (!rd.toLowerCase().startsWith(url.origin.toLowerCase()) && !rd.toLowerCase().startsWith(url.origin.toLowerCase().replace(/:(80|443)$/, ''))) return null
  return { origin: url.origin, path: url.pathname + url.search }
}
