import type { CustomFetchOptions } from 'openid-client'
import { Agent, request } from 'undici'

/**
 * The HTTP client for calls to the IdP (discovery, token, userinfo, refresh), given to
 * openid-client as its `customFetch`. It runs on undici's `request()` rather than the
 * WHATWG `fetch()`: on this code path fetch's Request/stream machinery cost ~0.4 ms of CPU a
 * call (benchmarks/NOTES-hot-path.md), paid inside every sign-in. Redirects are never
 * followed (openid-client asks for `redirect: 'manual'`; `request()` follows none).
 */
const agent = new Agent({ keepAliveTimeout: 10_000 })

/** An IdP answer is a few KiB of JSON; a body past this is refused, not buffered without end. */
export const MAX_IDP_BODY_BYTES = 1024 * 1024

/** Statuses whose Response may not carry a body. */
const NULL_BODY = new Set([101, 204, 205, 304])

export async function idpFetch (url: string, init: CustomFetchOptions): Promise<Response> {
  // Names lower-cased, as a Headers object would: one content-type, whoever spelled it how.
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(init.headers)) headers[k.toLowerCase()] = v
  let body: string | Uint8Array | undefined
  if (init.body instanceof URLSearchParams) {
    body = init.body.toString()
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8'
  } else if (typeof init.body === 'string' || init.body instanceof Uint8Array) {
    body = init.body
  } else if (init.body instanceof ArrayBuffer) {
    body = new Uint8Array(init.body)
  } else if (init.body !== undefined && init.body !== null) {
    throw new TypeError('idpFetch: a streamed request body is not supported')
  }
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    headers,
    body,
    signal: init.signal ?? undefined,
    dispatcher: agent
  })
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_IDP_BODY_BYTES) {
      res.body.destroy()
      throw new Error(`idpFetch: the answer from ${new URL(url).origin} is larger than ${MAX_IDP_BODY_BYTES} bytes`)
    }
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks, size).toString('utf8')
  const out = new Headers()
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue
    if (Array.isArray(v)) for (const x of v) out.append(k, x)
    else out.append(k, v)
  }
  return new Response(NULL_BODY.has(res.statusCode) ? null : text, { status: res.statusCode, headers: out })
}
