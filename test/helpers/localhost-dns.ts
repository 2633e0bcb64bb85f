/**
 * Names under .localhost are loopback (RFC 6761). Chromium resolves them so itself, but once a
 * Playwright context has `clientCertificates`, its connections go through Playwright's
 * in-process TLS interceptor, which resolves with Node's `dns.promises.lookup` — and glibc does
 * not know *.localhost. This makes that lookup answer as the browser would (IPv4 loopback,
 * where the demo listens); every other name goes to the system resolver untouched.
 */
import dns, { type LookupAddress, type LookupOptions } from 'node:dns'
import { isLocalhostName } from '../../src/device-trust/agent/report.js'
let installed = false

export function resolveLocalhostNamesAsBrowsersDo (): void {
  if (installed) return
  installed = true
  const original = dns.promises.lookup.bind(dns.promises)
  const lookup = async (hostname: string, options?: number | LookupOptions): Promise<LookupAddress | LookupAddress[]> => {
    if (!isLocalhostName(hostname)) return await original(hostname, options as LookupOptions)
    const o: LookupOptions = typeof options === 'number' ? { family: options } : options ?? {}
    const v4 = o.family === undefined || o.family === 0 || o.family === 4 || o.family === 'IPv4'
    const found: LookupAddress[] = v4 ? [{ address: '127.0.0.1', family: 4 }] : []
    if (o.all === true) return found
    if (found[0] === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname })
    return found[0]
  }
  dns.promises.lookup = lookup as typeof dns.promises.lookup
}
