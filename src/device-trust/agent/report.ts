/**
 * The posture report (SPEC "Devices"): `POST <authenticate.url>/.moatless/device/report`,
 * body `application/jwt`, a JWT signed by the device key:
 *   header { alg: ES256|EdDSA, typ: JWT }
 *   { iss: DEVICE_ID, sub: DEVICE_ID, aud: <authenticate.url>/.moatless/device/report,
 *     iat: now, exp: now + 120, jti: random, posture: { os, os_version, disk_encrypted?,
 *     screen_lock?, firewall?, extra } }
 * Unknown checks are left out of `posture` (the server treats them as unknown). sub repeats
 * iss, as in the X-Moatless-Device token, so one verifier fits both.
 * Answers: 204 stored; 400 malformed; 401 unknown device, bad signature, expired.
 */
import { randomUUID, type KeyObject } from 'node:crypto'
import { lookup as dnsLookup } from 'node:dns'
import type { LookupFunction } from 'node:net'
import { SignJWT } from 'jose'
import { Agent, fetch } from 'undici'
import type { DeviceAlg, PostureClaim } from './types.js'

export const REPORT_PATH = '/.moatless/device/report'
export const REPORT_LIFETIME_S = 120

/** <authenticate.url>/.moatless/device/report; the authenticate URL as configured, without a trailing slash. */
export function reportEndpoint (authUrl: string): string {
  let u: URL
  try {
    u = new URL(authUrl)
  } catch {
    throw new Error(`--url ${authUrl}: not a URL (the authenticate URL, e.g. https://auth.example.com)`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`--url ${authUrl}: must be http(s)`)
  if (u.search !== '' || u.hash !== '') throw new Error(`--url ${authUrl}: the authenticate URL has no query or fragment`)
  return authUrl.replace(/\/+$/, '') + REPORT_PATH
}

export interface ReportClaims {
  iss: string
  sub: string
  aud: string
  iat: number
  exp: number
  jti: string
  posture: PostureClaim
}

export function reportClaims (deviceId: string, endpoint: string, posture: PostureClaim, nowS = Math.floor(Date.now() / 1000)): ReportClaims {
  return { iss: deviceId, sub: deviceId, aud: endpoint, iat: nowS, exp: nowS + REPORT_LIFETIME_S, jti: randomUUID(), posture }
}

export async function signReport (claims: ReportClaims, key: KeyObject, alg: DeviceAlg): Promise<string> {
  return new SignJWT({ posture: claims.posture })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setIssuer(claims.iss)
    .setSubject(claims.sub)
    .setAudience(claims.aud)
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .setJti(claims.jti)
    .sign(key)
}

export interface ReportAnswer {
  status: number
  ok: boolean
  /** The server's reason: `error` (and `message`) of a JSON body, else the body's first line, else the status text. */
  reason: string
}

export function answerReason (status: number, statusText: string, body: string): string {
  const text = body.trim()
  if (text !== '') {
    try {
      const doc = JSON.parse(text) as unknown
      if (doc !== null && typeof doc === 'object') {
        const o = doc as Record<string, unknown>
        const parts = [o.error, o.message, o.reason].filter((v): v is string => typeof v === 'string' && v !== '')
        const id = typeof o.request_id === 'string' && o.request_id !== '' ? ` (request id ${o.request_id})` : ''
        if (parts.length > 0) return [...new Set(parts)].join(': ') + id
      }
    } catch { /* not JSON */ }
    if (!/^\s*</.test(text)) return (text.split(/\r?\n/)[0] ?? '').slice(0, 300)
  }
  return statusText !== '' ? statusText : `HTTP ${status}`
}

/**
 * Names under .localhost are loopback (RFC 6761) — browsers resolve them so, the demo's
 * authenticate URL is http://auth.localhost:8080 — but glibc and Node's resolver often do
 * not. Everything else goes to the system resolver.
 */
export function isLocalhostName (hostname: string): boolean {
  return /^[^.]+(\.[^.]+)*\.localhost\.?$/i.test(hostname)
}

export const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  if (isLocalhostName(hostname)) {
    if (options.all === true) {
      (callback as unknown as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }])
    } else {
      callback(null, '127.0.0.1', 4)
    }
    return
  }
  dnsLookup(hostname, options, callback)
}

export async function sendReport (endpoint: string, jwt: string, options: { ca?: string; timeoutMs?: number } = {}): Promise<ReportAnswer> {
  const dispatcher = new Agent({ connect: { lookup: loopbackLookup, ...(options.ca !== undefined ? { ca: options.ca } : {}) } })
  try {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/jwt', accept: 'application/json' },
      body: jwt,
      redirect: 'manual',
      dispatcher,
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000)
    })
    const body = await res.text()
    if (res.status >= 300 && res.status < 400) {
      return { status: res.status, ok: false, reason: `redirected to ${res.headers.get('location') ?? '?'}; --url must be the authenticate URL itself` }
    }
    return { status: res.status, ok: res.status === 204, reason: res.status === 204 ? 'stored' : answerReason(res.status, res.statusText, body) }
  } finally {
    await dispatcher.close()
  }
}
