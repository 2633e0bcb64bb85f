/**
 * Device identity from a client certificate signed by `listen.tls.client_ca`. The device is
 * named by the certificate's fingerprint: lowercase hex SHA-256 of the DER, no colons.
 *
 * - On our own TLS listener, Node has already verified the chain against client_ca (the
 *   server asks for a certificate, never requires one): a certificate counts only when
 *   `socket.authorized` is true.
 * - Behind a load balancer that terminates TLS, the certificate arrives as `X-Client-Cert`
 *   (URL-encoded PEM, nginx `$ssl_client_escaped_cert`). It is believed only from
 *   `trusted_proxies` peers (the caller checks) and only after we verify it ourselves: issued and
 *   signed by a client_ca certificate, within its validity dates, usable for client auth.
 *   Intermediate CAs are not followed: client_ca must hold the certificate's direct issuer.
 */
import { createHash, X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { LRUCache } from 'lru-cache'

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const ANY_EKU = '2.5.29.37.0'
/** A forwarded certificate is a few KiB at most; anything far larger is not one. */
const MAX_HEADER = 16 * 1024

export function fingerprintOfDer (der: Buffer): string {
  return createHash('sha256').update(der).digest('hex')
}

/** `AB:CD:...`, `abcd...` → `abcd...`; null when it is not a SHA-256 fingerprint. */
export function normalizeFingerprint (s: string): string | null {
  const hex = s.trim().replace(/:/g, '').toLowerCase()
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null
}

/** Every certificate of a PEM bundle. */
export function parseCertificates (pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  return blocks.map((b) => new X509Certificate(b))
}

export type ForwardedCert = { ok: true; fingerprint: string } | { ok: false; reason: string }

interface Verified { fingerprint: string; notBefore: number; notAfter: number }

export class ClientCertificates {
  private readonly cas: X509Certificate[]
  private readonly bySocket = new WeakMap<TLSSocket, string | null>()
  /** Header value → verification result (dates are checked on every use). */
  private readonly forwarded = new LRUCache<string, Verified | { reason: string }>({ max: 10_000, maxSize: 16 * 1024 * 1024, sizeCalculation: (_v, k) => k.length + 128 })

  constructor (clientCaPem: string) {
    this.cas = parseCertificates(clientCaPem)
    if (this.cas.length === 0) throw new Error('listen.tls.client_ca holds no PEM certificate')
  }

  /** The fingerprint of the certificate this TLS connection presented, when it chained to client_ca. */
  fromSocket (socket: TLSSocket): string | null {
    let fp = this.bySocket.get(socket)
    if (fp !== undefined) return fp
    fp = null
    if (socket.authorized) {
      const raw = socket.getPeerCertificate().raw as Buffer | undefined
      if (raw !== undefined && raw.length > 0) fp = fingerprintOfDer(raw)
    }
    this.bySocket.set(socket, fp)
    return fp
  }

  /** The certificate a trusted load balancer forwarded in `X-Client-Cert`, verified against client_ca. */
  fromHeader (value: string, now: number): ForwardedCert {
    let v = this.forwarded.get(value)
    if (v === undefined) {
      v = this.verify(value)
      this.forwarded.set(value, v)
    }
    if ('reason' in v) return { ok: false, reason: v.reason }
    if (now < v.notBefore || now > v.notAfter) return { ok: false, reason: 'the forwarded client certificate is expired or not yet valid' }
    return { ok: true, fingerprint: v.fingerprint }
  }

  private verify (value: string): Verified | { reason: string } {
    if (value.length > MAX_HEADER) return { reason: 'the forwarded client certificate is too large' }
    let cert: X509Certificate
    try {
      const text = decodeURIComponent(value)
      cert = text.includes('-----BEGIN CERTIFICATE-----')
        ? new X509Certificate(text)
        : new X509Certificate(Buffer.from(text.replace(/\s+/g, ''), 'base64'))
    } catch {
      return { reason: 'the forwarded client certificate cannot be read' }
    }
    const issuer = this.cas.find((ca) => ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey))
    if (issuer === undefined) return { reason: 'the forwarded client certificate is not signed by client_ca' }
    if (cert.ca) return { reason: 'the forwarded certificate is a CA certificate, not a device certificate' }
    const eku = cert.keyUsage as string[] | undefined
    if (eku !== undefined && eku.length > 0 && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU)) {
      return { reason: 'the forwarded certificate is not for client authentication' }
    }
    return {
      fingerprint: fingerprintOfDer(cert.raw),
      notBefore: Math.max(Date.parse(cert.validFrom), Date.parse(issuer.validFrom)),
      notAfter: Math.min(Date.parse(cert.validTo), Date.parse(issuer.validTo))
    }
  }
}
