/**
 * The demo's simulated device agent: a page on 127.0.0.1 standing in for the Moatless agent on
 * alice's laptop. Each button signs a posture report with the device key and POSTs it to the
 * authenticate origin, exactly as `moatless agent report` does (src/demo/device.ts), and the
 * page shows the device's record and trust level as the proxy now computes them.
 *
 * It changes a demo device only, but is still guarded like any form: POSTs need the page's
 * per-start token and, when the browser sends one, this page's Origin; and only its own Host
 * is answered (a DNS-rebinding page cannot read the token).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Store } from '../store/index.js'
import type { TrustLevels } from '../device-trust/trust-levels.js'
import { sendSimulatedReport, SIMULATED_POSTURES, type DemoDevice, type SimulatedPosture } from './device.js'

export interface AgentPage {
  url: string
  close (): Promise<void>
}

export interface AgentPageOptions {
  device: DemoDevice
  store: Store
  levels: TrustLevels
  /** authenticate.url: where reports go. */
  authUrl: string
  /** Port on 127.0.0.1; 0 (default) = any free one. */
  port?: number
}

const MAX_FORM = 1024

export async function startAgentPage (opts: AgentPageOptions): Promise<AgentPage> {
  const token = randomBytes(24).toString('base64url')
  let last: { which: SimulatedPosture; status: number; reason: string } | null = null
  let origin = ''
  let host = ''

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, `<p>The simulated agent failed: ${esc((err as Error).message)}</p>`)
      else res.destroy()
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.headers.host !== host) {
      send(res, 421, '<p>This page answers only at its own address.</p>')
      return
    }
    const path = new URL(req.url ?? '/', 'http://agent.invalid').pathname
    if (req.method === 'GET' && path === '/') {
      send(res, 200, await page())
      return
    }
    if (req.method === 'POST' && path === '/report') {
      const form = await readForm(req)
      const sentOrigin = req.headers.origin
      if (form === null || !sameToken(form.get('token') ?? '', token) || (sentOrigin !== undefined && sentOrigin !== origin)) {
        send(res, 403, '<p>Refused: this form only works from the page itself. <a href="/">Back</a></p>')
        return
      }
      const which = form.get('posture') ?? ''
      if (!Object.hasOwn(SIMULATED_POSTURES, which)) {
        send(res, 400, '<p>Unknown posture. <a href="/">Back</a></p>')
        return
      }
      const answer = await sendSimulatedReport(opts.device, opts.authUrl, which as SimulatedPosture)
      last = { which: which as SimulatedPosture, status: answer.status, reason: answer.reason }
      res.writeHead(303, { location: '/', 'cache-control': 'no-store' }).end()
      return
    }
    res.writeHead(req.method === 'GET' || req.method === 'POST' ? 404 : 405, { 'content-type': 'text/plain' }).end('not found\n')
  }

  async function page (): Promise<string> {
    const record = await opts.store.getDevice(opts.device.id).catch(() => null)
    const graded = record === null ? null : opts.levels.grade(record, Date.now()).device
    const p = record?.posture ?? {}
    const yn = (v: boolean | undefined): string => v === undefined ? 'unknown' : v ? 'yes' : 'no'
    const rows: Array<[string, string]> = record === null
      ? [['record', 'not enrolled']]
      : [
          ['owner', record.owner],
          ['status', record.status],
          ['managed (MDM)', yn(record.managed)],
          ['os', p.os === undefined ? 'unknown' : `${p.os} ${p.os_version ?? ''}`.trim()],
          ['disk encrypted', yn(p.disk_encrypted)],
          ['screen lock', yn(p.screen_lock)],
          ['firewall', yn(p.firewall)],
          ['last report', p.reported_at === undefined ? 'never' : new Date(p.reported_at).toISOString()]
        ]
    const level = graded === null ? 'none' : graded.trust
    const lacks = graded === null || graded.reasons.length === 0 ? '' : `<p class="muted">Not higher because: ${esc(graded.reasons.join('; '))}</p>`
    const result = last === null
      ? ''
      : `<p id="result" class="${last.status === 204 ? 'good' : 'bad'}">Sent the “${esc(last.which)}” report: the proxy answered ${last.status} (${esc(last.reason)}).</p>`
    const button = (which: SimulatedPosture, label: string): string =>
      `<form method="post" action="/report"><input type="hidden" name="token" value="${token}"><input type="hidden" name="posture" value="${which}"><button id="report-${which}" type="submit">${esc(label)}</button></form>`
    const command = `npx moatless agent report --url ${opts.authUrl} --device-id ${opts.device.id} --key ${opts.device.files.deviceKey}`
    return `<h1>Device agent (simulated) · ${esc(opts.device.id)}</h1>
<p>This page stands in for the Moatless agent on ${esc(opts.device.owner)}'s laptop. Each button signs a posture report with the device key and sends it to <code>${esc(opts.authUrl)}/.moatless/device/report</code>, as the real agent does.</p>
${result}
<section><h2>Trust level now: <span id="level">${esc(level)}</span></h2>${lacks}
<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table></section>
<section class="buttons">${button('healthy', 'Report a healthy laptop (disk encrypted, screen lock, firewall)')}${button('disk-off', 'Report disk encryption off')}</section>
<p class="muted">The real agent reports this machine's actual posture instead:<br><code>${esc(command)}</code></p>`
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  origin = url
  host = url.slice('http://'.length)
  return {
    url,
    async close () {
      if (!server.listening) return
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    }
  }
}

function sameToken (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** An application/x-www-form-urlencoded body of at most MAX_FORM bytes, else null. */
async function readForm (req: IncomingMessage): Promise<URLSearchParams | null> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return null
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_FORM) return null
    chunks.push(chunk)
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
}

function send (res: ServerResponse, status: number, inner: string): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Device agent (simulated)</title><style>${CSS}</style></head><body><main>${inner}</main></body></html>`
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff'
  })
  res.end(html)
}

function esc (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] as string))
}

const CSS = `body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1f2937;background:#f4f7f6}main{max-width:46rem;margin:2rem auto;padding:0 2rem}
h1{font-size:1.5rem}h2{font-size:1.1rem}table{border-collapse:collapse}th{text-align:left;padding:.2rem 1rem .2rem 0;color:#4b5563}td{font-family:ui-monospace,monospace}
.buttons{display:flex;gap:1rem;flex-wrap:wrap;margin:1.2rem 0}button{font:inherit;padding:.5rem .9rem;border-radius:8px;border:1px solid #0f766e;background:#0f766e;color:#fff;cursor:pointer}
form+form button{background:#fff;color:#b91c1c;border-color:#b91c1c}.good{color:#15803d}.bad{color:#b91c1c}.muted{color:#6b7280;font-size:.85rem}code{background:#e5e7eb;padding:.05rem .3rem;border-radius:4px;word-break:break-all}`
