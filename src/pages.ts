/**
 * Moatless's own pages (deny, errors, sign-in results). Every one is sent with no-store
 * and a strict Content-Security-Policy: no script, no framing, inline style only.
 */
import type { FastifyReply } from 'fastify'

export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer'
})

export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff'
})

export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] as string))
}

const STYLE = `body{font:16px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;background:#f5f6f8;color:#1d2330;margin:0}
main{max-width:40rem;margin:8vh auto;background:#fff;border-radius:10px;box-shadow:0 2px 12px #0001;padding:2rem 2.5rem}
h1{font-size:1.4rem;margin:0 0 1rem}.brand{font-size:.8rem;letter-spacing:.1em;text-transform:uppercase;color:#6b7280;margin-bottom:1.5rem}
ul{padding-left:1.2rem}li{margin:.3rem 0}code{background:#f0f1f4;padding:.1rem .3rem;border-radius:4px}
.meta{color:#6b7280;font-size:.85rem;margin-top:1.5rem}a.button{display:inline-block;background:#2f5bea;color:#fff;padding:.5rem 1rem;border-radius:6px;text-decoration:none}`

/** A full page; `body` must already be escaped HTML. */
export function page (title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main><div class="brand">Moatless</div><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`
}

export function sendPage (reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(page(title, body))
}

export function sendJson (reply: FastifyReply, status: number, value: unknown): FastifyReply {
  return reply.code(status).headers(JSON_HEADERS).send(JSON.stringify(value))
}

export function list (items: string[]): string {
  return `<ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`
}

export function requestMeta (requestId: string): string {
  return `<p class="meta">Request id: <code>${escapeHtml(requestId)}</code> (quote it when you ask for help).</p>`
}
