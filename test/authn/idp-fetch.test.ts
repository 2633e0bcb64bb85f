/**
 * idpFetch (src/authn/idp-fetch.ts) is the HTTP client openid-client uses for every call to the
 * IdP. It is built on undici's `request()` rather than `fetch()`, so everything fetch would have
 * done for free is checked here against a real node:http server: the form body and its
 * content-type, the caller's headers, repeated response headers, no redirect following, null
 * bodies for 204/304, abort, non-2xx answers, and a discovery + client_credentials round trip
 * through openid-client itself.
 */
import t, { type Test } from 'tap'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as client from 'openid-client'
import { idpFetch, MAX_IDP_BODY_BYTES } from '../../src/authn/idp-fetch.js'

interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: string
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

/** A real HTTP server on 127.0.0.1:0 recording every request; closed when `tt` ends. */
async function serve (tt: Test, handler: Handler): Promise<{ origin: string, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body })
      handler(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tt.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const { port } = server.address() as AddressInfo
  return { origin: `http://127.0.0.1:${port}`, seen }
}

/** How many times a header name (any case) appears in the raw request. */
function countRaw (raw: string[], name: string): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === name) n++
  return n
}

const okJson: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('{"ok":true}')
}

const init = (over: Partial<client.CustomFetchOptions>): client.CustomFetchOptions =>
  ({ method: 'GET', headers: {}, body: undefined, redirect: 'manual', ...over })

t.test('POST with a URLSearchParams body', async (t) => {
  const { origin, seen } = await serve(t, okJson)
  const form = new URLSearchParams({ grant_type: 'authorization_code', code: 'a b&c=d/é', redirect_uri: 'https://app.example/cb?x=1' })

  const res = await idpFetch(`${origin}/token`, init({
    method: 'POST',
    headers: { authorization: 'Basic Y2lkOnNlY3JldA==', accept: 'application/json', 'user-agent': 'moatless-test' },
    body: form
  }))
  t.equal(res.status, 200)
  t.same(await res.json(), { ok: true })
  t.equal(seen.length, 1)
  const s = seen[0]!
  t.equal(s.method, 'POST')
  t.equal(s.url, '/token')
  t.equal(s.body, form.toString(), 'the exact form body')
  t.equal(s.headers['content-type'], 'application/x-www-form-urlencoded;charset=UTF-8', 'default content-type when the caller set none')
  t.equal(s.headers.authorization, 'Basic Y2lkOnNlY3JldA==', 'authorization unchanged')
  t.equal(s.headers.accept, 'application/json', 'accept unchanged')
  t.equal(s.headers['user-agent'], 'moatless-test', 'user-agent unchanged')
  t.equal(s.headers['content-length'], String(Buffer.byteLength(form.toString())), 'content-length is the byte length')

  // A caller-set content-type (lower case, as openid-client passes it) is kept, and sent once.
  await idpFetch(`${origin}/token`, init({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ a: '1' })
  }))
  t.equal(seen[1]!.headers['content-type'], 'application/x-www-form-urlencoded', 'caller content-type kept')
  t.equal(countRaw(seen[1]!.rawHeaders, 'content-type'), 1, 'one content-type header')
  t.equal(seen[1]!.body, 'a=1')

  // The same with a differently-cased header name: still the caller's, still sent once.
  // (Fetch treats header names case-insensitively; openid-client itself passes lower-case names.)
  await idpFetch(`${origin}/token`, init({
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ a: '2' })
  }))
  t.equal(countRaw(seen[2]!.rawHeaders, 'content-type'), 1, 'one content-type header when the caller spelled it Content-Type')
  t.equal(seen[2]!.headers['content-type'], 'application/x-www-form-urlencoded', 'caller Content-Type kept')
})

t.test('the Response carries status, headers (repeated ones too) and body', async (t) => {
  const { origin } = await serve(t, (_req, res) => {
    res.statusCode = 201
    res.setHeader('content-type', 'application/json; charset=utf-8')
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly'])
    res.setHeader('x-multi', ['one', 'two'])
    res.setHeader('x-single', 'v')
    res.end(JSON.stringify({ hello: 'wörld', n: 1 }))
  })
  const res = await idpFetch(`${origin}/x`, init({}))
  t.equal(res.status, 201)
  t.equal(res.ok, true)
  t.equal(res.headers.get('content-type'), 'application/json; charset=utf-8')
  t.same(res.headers.getSetCookie(), ['a=1; Path=/', 'b=2; HttpOnly'], 'both set-cookie values')
  t.equal(res.headers.get('x-multi'), 'one, two', 'both x-multi values')
  t.equal(res.headers.get('x-single'), 'v')
  t.same(await res.json(), { hello: 'wörld', n: 1 })

  const res2 = await idpFetch(`${origin}/y`, init({}))
  t.equal(await res2.text(), '{"hello":"wörld","n":1}', 'text()')
})

t.test('string and Uint8Array bodies are sent as-is', async (t) => {
  const { origin, seen } = await serve(t, okJson)
  const str = '{"k":"välue"}'
  await idpFetch(`${origin}/s`, init({ method: 'POST', headers: { 'content-type': 'application/json' }, body: str }))
  t.equal(seen[0]!.body, str)
  t.equal(seen[0]!.headers['content-type'], 'application/json')
  t.equal(seen[0]!.headers['content-length'], String(Buffer.byteLength(str)))

  const bytes = new TextEncoder().encode('raw bytes ✓')
  await idpFetch(`${origin}/u`, init({ method: 'PUT', headers: {}, body: bytes }))
  t.equal(seen[1]!.method, 'PUT')
  t.equal(seen[1]!.body, 'raw bytes ✓')
  t.equal(seen[1]!.headers['content-length'], String(bytes.byteLength))

  const ab = new TextEncoder().encode('array buffer').buffer as ArrayBuffer
  await idpFetch(`${origin}/ab`, init({ method: 'POST', headers: {}, body: ab }))
  t.equal(seen[2]!.body, 'array buffer')
})

t.test('redirects are not followed', async (t) => {
  const { origin, seen } = await serve(t, (req, res) => {
    if (req.url === '/start') {
      res.writeHead(302, { location: '/target' })
      res.end()
    } else okJson(req, res, '')
  })
  const res = await idpFetch(`${origin}/start`, init({}))
  t.equal(res.status, 302)
  t.equal(res.headers.get('location'), '/target')
  t.equal(seen.length, 1, 'one request only')
  t.same(seen.map((s) => s.url), ['/start'], 'the target was never requested')
})

t.test('204 and 304 give a null body', async (t) => {
  const { origin } = await serve(t, (req, res) => {
    res.writeHead(req.url === '/204' ? 204 : 304, { etag: '"e"' })
    res.end()
  })
  const r204 = await idpFetch(`${origin}/204`, init({}))
  t.equal(r204.status, 204)
  t.equal(r204.body, null)
  t.equal(await r204.text(), '')
  const r304 = await idpFetch(`${origin}/304`, init({ headers: { 'if-none-match': '"e"' } }))
  t.equal(r304.status, 304)
  t.equal(r304.body, null)
  t.equal(r304.headers.get('etag'), '"e"')
})

t.test('an AbortSignal that fires rejects', async (t) => {
  const { origin, seen } = await serve(t, () => { /* never answers */ })
  const started = Date.now()
  await t.rejects(idpFetch(`${origin}/hang`, init({ signal: AbortSignal.timeout(200) })))
  t.ok(Date.now() - started < 5000, 'rejected promptly')
  t.equal(seen.length, 1, 'the request reached the server')

  // Headers sent, body never finished: the signal must still end the call.
  const half = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"partial":')
  })
  await t.rejects(idpFetch(`${half.origin}/half`, init({ signal: AbortSignal.timeout(200) })), 'aborted while reading the body')

  // An already-aborted signal rejects without waiting.
  await t.rejects(idpFetch(`${origin}/pre`, init({ signal: AbortSignal.abort() })))
})

t.test('a non-2xx answer resolves with its status and body', async (t) => {
  const { origin } = await serve(t, (_req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'bad code' }))
  })
  const res = await idpFetch(`${origin}/token`, init({ method: 'POST', body: new URLSearchParams({ code: 'x' }) }))
  t.equal(res.status, 400)
  t.equal(res.ok, false)
  t.same(await res.json(), { error: 'invalid_grant', error_description: 'bad code' })
})

t.test('a ReadableStream body is rejected with a TypeError', async (t) => {
  const { origin, seen } = await serve(t, okJson)
  const stream = new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode('x')); c.close() } })
  await t.rejects(idpFetch(`${origin}/s`, init({ method: 'POST', body: stream, duplex: 'half' })), TypeError)
  t.equal(seen.length, 0, 'nothing was sent')
})

t.test('end to end with openid-client: discovery and client_credentials', async (t) => {
  let origin = ''
  const { origin: o, seen } = await serve(t, (req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        jwks_uri: `${origin}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256']
      }))
    } else if (req.method === 'POST' && req.url === '/token') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify({ access_token: 'at', token_type: 'Bearer', expires_in: 60 }))
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  origin = o

  const config = await client.discovery(new URL(origin), 'cid', 'secret', undefined, {
    execute: [client.allowInsecureRequests],
    [client.customFetch]: idpFetch
  })
  t.equal(config.serverMetadata().issuer, origin)
  t.equal(config.serverMetadata().token_endpoint, `${origin}/token`)

  const tokens = await client.clientCredentialsGrant(config, { scope: 'x' })
  t.equal(tokens.access_token, 'at')
  t.equal(tokens.token_type.toLowerCase(), 'bearer')
  const exp = tokens.expiresIn()
  t.ok(exp !== undefined && exp > 50 && exp <= 60, `expiresIn() about 60 (got ${String(exp)})`)

  t.same(seen.map((s) => `${s.method} ${s.url}`), ['GET /.well-known/openid-configuration', 'POST /token'])
  const tok = seen[1]!
  const form = new URLSearchParams(tok.body)
  t.equal(form.get('grant_type'), 'client_credentials')
  t.equal(form.get('scope'), 'x')
  t.match(tok.headers['content-type'], /^application\/x-www-form-urlencoded/)
  const basic = tok.headers.authorization
  const hasAuth = (typeof basic === 'string' && /^Basic /i.test(basic)) || form.get('client_secret') === 'secret'
  t.ok(hasAuth, 'client authentication present (Basic header or client_secret in the body)')
  if (typeof basic === 'string' && /^Basic /i.test(basic)) {
    t.equal(Buffer.from(basic.slice(6), 'base64').toString(), 'cid:secret')
  }
})

t.test('an answer larger than MAX_IDP_BODY_BYTES is refused, not buffered', async (t) => {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    if (req.url === '/small') { res.end('{"ok":true}'); return }
    // Chunked, no content-length: the limit must hold while reading.
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    let sent = 0
    const more = (): void => {
      while (sent <= MAX_IDP_BODY_BYTES + chunk.length) {
        sent += chunk.length
        if (!res.write(chunk)) { res.once('drain', more); return }
      }
      res.end()
    }
    more()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  await t.rejects(idpFetch(`${origin}/big`, init({ method: 'GET' })), /larger than/)
  const ok = await idpFetch(`${origin}/small`, init({ method: 'GET' }))
  t.same(await ok.json(), { ok: true })
})
