/**
 * Sign-in time: real sign-ins (a fresh cookie-keeping client each, the embedded IdP's login
 * form filled in) against a `moatless serve` on the Redis store, measuring the proxy's server
 * time for the two requests that are Moatless's own work once the IdP has let the user in:
 * GET /.moatless/callback (code redemption, session creation, handoff code) and
 * GET /.moatless/handoff on the app origin (session cookie for that origin).
 *
 * Method:
 *  - server time per request = `duration` of the proxy's own decision log line (ms from the
 *    request reaching the proxy to the end of its response; written for every request);
 *  - time the proxy spent waiting on the IdP = every outgoing request to the IdP's origin,
 *    created -> response complete, recorded inside the proxy process by a preloaded
 *    diagnostics-channel listener (trace-outgoing.mjs; no change to the proxy's code);
 *  - sign-in time = (callback - waiting on the IdP) + handoff.
 * For comparison, the IdP's own server time for the same requests (request parsed -> response
 * finished, in the IdP's HTTP server) is subtracted instead: the difference between the two is
 * the loopback round trip and HTTP client work, which that variant leaves in the proxy's share.
 * The first WARMUP sign-ins are not counted (JIT, connection set-up to the IdP and Redis).
 */
import { subscribe } from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import { Browser } from '../test/helpers/browser.js'
import { signInAtIdp } from '../test/helpers/idp-login.js'
import { percentile, round, sleep, type MoatlessProcess } from './harness.js'

const HTML = { accept: 'text/html' }

export interface IdpCall { path: string; start: number; ms: number }

/**
 * Times every request the IdP's HTTP server handles (from the request being parsed to the end
 * of the response), through node:http's diagnostics channels. The IdP is the only HTTP server
 * in the bench process; requests are matched to its port to be sure.
 */
export function instrumentIdp (idpPort: number): IdpCall[] {
  const calls: IdpCall[] = []
  const open = new WeakMap<object, { path: string; start: number }>()
  const ours = (m: { server?: { address (): unknown } }): boolean => (m.server?.address() as { port?: number } | null)?.port === idpPort
  subscribe('http.server.request.start', (msg) => {
    const m = msg as { request: IncomingMessage; server?: { address (): unknown } }
    if (!ours(m)) return
    open.set(m.request, { path: (m.request.url ?? '').split('?')[0] as string, start: performance.now() })
  })
  subscribe('http.server.response.finish', (msg) => {
    const m = msg as { request: IncomingMessage }
    const o = open.get(m.request)
    if (o === undefined) return
    open.delete(m.request)
    calls.push({ path: o.path, start: o.start, ms: performance.now() - o.start })
  })
  return calls
}

export interface Stat { p50: number; p95: number; max: number }
export interface SignInResult {
  signins: number
  warmup: number
  /** Callback + handoff server time minus the time the proxy waited on the IdP: the number the target is about. */
  moatless_ms: Stat
  callback_server_ms: Stat
  proxy_waiting_on_idp_ms: Stat
  handoff_server_ms: Stat
  /** Variant: minus the IdP's own server time instead (leaves the loopback round trip in the proxy's share). */
  moatless_minus_idp_server_time_ms: Stat
  idp_server_ms: Stat
  /** Outgoing requests the proxy made to the IdP during the measured sign-ins, by path. */
  idp_requests_by_proxy: Record<string, number>
}

const stat = (xs: number[]): Stat => ({ p50: round(percentile(xs, 50)), p95: round(percentile(xs, 95)), max: round(Math.max(...xs)) })

export async function measureSignIn (o: { moatless: MoatlessProcess; traceFile: string; idpIssuer: string; idpCalls: IdpCall[]; from: string; signins: number; warmup: number; user: string; password: string }): Promise<SignInResult> {
  const idpOrigin = new URL(o.idpIssuer).origin
  const decisions = (path: string): Record<string, unknown>[] => o.moatless.logs.filter((l) => l.msg === 'decision' && l.path === path)
  const rows: { callback: number; wait: number; idp: number; handoff: number }[] = []
  const traced = (): { path: string; ms: number; failed: boolean }[] => {
    let text = ''
    try { text = readFileSync(o.traceFile, 'utf8') } catch { return [] }
    return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { path: string; ms: number; failed: boolean })
  }
  const paths: Record<string, number> = {}

  for (let i = 0; i < o.warmup + o.signins; i++) {
    const callbacksBefore = decisions('/.moatless/callback').length
    const handoffsBefore = decisions('/.moatless/handoff').length
    const tracedBefore = traced().length
    const b = new Browser()
    let window: [number, number] | null = null
    let handoffSeen = false
    let res = await b.request(`${o.from}/`, { headers: HTML })
    let next = typeof res.headers.location === 'string' ? res.headers.location : undefined
    for (let hop = 0; hop < 20 && next !== undefined; hop++) {
      const target = new URL(next, res.url)
      if (target.origin === idpOrigin) {
        const atIdp = await b.follow(target.href, { headers: HTML }, 20, { stopBefore: (u) => u.origin !== idpOrigin })
        const page = atIdp.final
        if (page.status >= 300 && page.status < 400) { next = new URL(page.headers.location as string, page.url).href; continue }
        next = (await signInAtIdp(b, page.url, o.user, o.password)).url
        continue
      }
      const t0 = performance.now()
      res = await b.request(target.href, { headers: HTML })
      const t1 = performance.now()
      if (target.pathname === '/.moatless/callback') window = [t0, t1]
      if (target.pathname === '/.moatless/handoff') handoffSeen = true
      next = res.status >= 300 && res.status < 400 && typeof res.headers.location === 'string' ? res.headers.location : undefined
    }
    await b.close()
    if (res.status !== 200 || window === null || !handoffSeen) throw new Error(`sign-in ${i} did not complete: ended with ${res.status} at ${res.url}`)
    // The decision line is written when the response ends: possibly just after the client saw it.
    for (let w = 0; w < 200 && (decisions('/.moatless/callback').length <= callbacksBefore || decisions('/.moatless/handoff').length <= handoffsBefore); w++) await sleep(5)
    const cb = decisions('/.moatless/callback')[callbacksBefore]
    const ho = decisions('/.moatless/handoff')[handoffsBefore]
    if (cb === undefined || ho === undefined || cb.status !== 302 || ho.status !== 302) throw new Error(`sign-in ${i}: no 302 decision lines for callback/handoff (${JSON.stringify(cb)} ${JSON.stringify(ho)})`)
    const [w0, w1] = window
    const during = o.idpCalls.filter((c) => c.start >= w0 && c.start <= w1)
    const idp = during.reduce((n, c) => n + c.ms, 0)
    // The proxy's outgoing IdP requests of this sign-in (only the callback makes any).
    const mine = traced().slice(tracedBefore)
    if (mine.some((c) => c.failed)) throw new Error(`sign-in ${i}: an outgoing request to the IdP failed`)
    const wait = mine.reduce((n, c) => n + c.ms, 0)
    if (i < o.warmup) continue
    for (const c of mine) paths[c.path] = (paths[c.path] ?? 0) + 1
    rows.push({ callback: cb.duration as number, wait, idp, handoff: ho.duration as number })
  }

  return {
    signins: o.signins,
    warmup: o.warmup,
    moatless_ms: stat(rows.map((r) => r.callback - r.wait + r.handoff)),
    callback_server_ms: stat(rows.map((r) => r.callback)),
    proxy_waiting_on_idp_ms: stat(rows.map((r) => r.wait)),
    handoff_server_ms: stat(rows.map((r) => r.handoff)),
    moatless_minus_idp_server_time_ms: stat(rows.map((r) => r.callback - r.idp + r.handoff)),
    idp_server_ms: stat(rows.map((r) => r.idp)),
    idp_requests_by_proxy: paths
  }
}
