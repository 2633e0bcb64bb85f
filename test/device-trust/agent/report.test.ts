/**
 * `moatless agent report` (the built CLI; `npm run build` first) against a small report
 * endpoint started here, which verifies the JWT with the device's public key as the server
 * does and answers 204 — or 401 {"error":"unknown device"}.
 */
import t from 'tap'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader, importSPKI, jwtVerify, type JWTPayload } from 'jose'
import { createTestCa } from '../../helpers/tls.js'
import { moatless } from './helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'moatless-report-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface Received {
  method: string
  url: string
  contentType: string | undefined
  body: string
  header?: ReturnType<typeof decodeProtectedHeader>
  claims?: JWTPayload
  error?: string
}

interface Endpoint { url: string; received: Received[]; close: () => Promise<void> }

/** The report endpoint: verifies like the server (alg, signature, iss, aud, expiry), then `answer`. */
async function endpoint (publicPem: string, alg: 'ES256' | 'EdDSA', answer: 204 | 401, tls?: { cert: string; key: string }, host = '127.0.0.1'): Promise<Endpoint> {
  const received: Received[] = []
  const key = await importSPKI(publicPem, alg)
  let base = ''
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => { body += d })
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body }
      received.push(r)
      void (async () => {
        try {
          r.header = decodeProtectedHeader(body)
          const { payload } = await jwtVerify(body, key, {
            algorithms: [alg], issuer: 'laptop-42', audience: `${base}/.moatless/device/report`, maxTokenAge: '5m'
          })
          r.claims = payload
        } catch (err) {
          r.error = (err as Error).message
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad signature' }))
          return
        }
        if (answer === 204) res.writeHead(204).end()
        else res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unknown device' }))
      })()
    })
  }
  const server: Server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  base = `${tls === undefined ? 'http' : 'https'}://${host}:${port}`
  return { url: base, received, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

async function keygen (alg: 'ES256' | 'EdDSA'): Promise<{ keyFile: string; publicPem: string }> {
  const out = join(dir, alg)
  const r = await moatless(['agent', 'keygen', '--out', out, '--alg', alg])
  if (r.code !== 0) throw new Error(r.err)
  return { keyFile: join(out, 'device.key.pem'), publicPem: readFileSync(join(out, 'device.pub.pem'), 'utf8') }
}

const es = await keygen('ES256')
const ed = await keygen('EdDSA')

/** stdout = the posture JSON document, then the answer line. */
function splitOutput (out: string): { posture: Record<string, unknown>; rest: string } {
  const end = out.indexOf('\n}\n')
  return { posture: JSON.parse(out.slice(0, end + 2)) as Record<string, unknown>, rest: out.slice(end + 3) }
}

for (const [alg, device] of [['ES256', es], ['EdDSA', ed]] as const) {
  t.test(`a report signed with the ${alg} key is accepted: 204, exit 0`, async (t) => {
    const ep = await endpoint(device.publicPem, alg, 204)
    t.teardown(ep.close)
    const started = Math.floor(Date.now() / 1000)
    // a trailing slash on the authenticate URL does not end up in aud
    const r = await moatless(['agent', 'report', '--url', ep.url + '/', '--device-id', 'laptop-42', '--key', device.keyFile])
    t.equal(r.code, 0, r.err)
    t.equal(ep.received.length, 1)
    const got = ep.received[0]!
    t.equal(got.error, undefined, 'the JWT verifies with the enrolled public key')
    t.equal(got.method, 'POST')
    t.equal(got.url, '/.moatless/device/report')
    t.equal(got.contentType, 'application/jwt')
    t.same(got.header, { alg, typ: 'JWT' })

    const c = got.claims!
    t.equal(c.iss, 'laptop-42')
    t.equal(c.aud, `${ep.url}/.moatless/device/report`)
    t.type(c.iat, 'number')
    t.type(c.exp, 'number')
    t.ok(c.iat! >= started - 1 && c.iat! <= Math.floor(Date.now() / 1000) + 1, 'iat = now')
    t.ok(c.exp! > c.iat!, 'exp after iat')
    t.ok(c.exp! - c.iat! <= 300, 'exp - iat <= 5 min')
    t.equal(c.exp! - c.iat!, 120)
    t.match(c.jti, /^[0-9a-f-]{36}$/, 'jti: a random UUID')

    const posture = c.posture as Record<string, unknown>
    t.equal(posture.os, process.platform === 'linux' ? 'linux' : posture.os)
    if (process.platform === 'linux') t.equal(posture.os_version, release())
    for (const k of ['disk_encrypted', 'screen_lock', 'firewall']) {
      t.ok(!(k in posture) || typeof posture[k] === 'boolean', `${k}: boolean, or left out when unknown`)
    }

    const { posture: printed, rest } = splitOutput(r.out)
    t.same(printed, posture, 'stdout shows exactly the posture that was sent')
    t.equal(rest, `POST ${ep.url}/.moatless/device/report: 204 stored\n`)
    t.notOk(r.out.includes(got.body) || r.err.includes(got.body), 'the JWT is never printed')
    t.notOk(/eyJ[A-Za-z0-9_-]{10,}/.test(r.out + r.err), 'nothing JWT-like is printed')
  })
}

t.test('every report has its own jti', async (t) => {
  const ep = await endpoint(es.publicPem, 'ES256', 204)
  t.teardown(ep.close)
  for (let i = 0; i < 2; i++) {
    t.equal((await moatless(['agent', 'report', '--url', ep.url, '--device-id', 'laptop-42', '--key', es.keyFile])).code, 0)
  }
  t.not(ep.received[0]?.claims?.jti, ep.received[1]?.claims?.jti)
})

t.test('401 {"error":"unknown device"} → exit 1 with that reason', async (t) => {
  const ep = await endpoint(es.publicPem, 'ES256', 401)
  t.teardown(ep.close)
  const r = await moatless(['agent', 'report', '--url', ep.url, '--device-id', 'laptop-42', '--key', es.keyFile])
  t.equal(r.code, 1)
  t.equal(ep.received.length, 1)
  t.equal(ep.received[0]?.error, undefined, 'the report itself was valid')
  t.equal(r.err, `moatless agent report: POST ${ep.url}/.moatless/device/report: 401 unknown device\n`)
  t.doesNotThrow(() => splitOutput(r.out), 'the posture is still shown')
  t.notOk(r.out.includes('204'))
})

t.test('signed by another key: the server says bad signature, exit 1', async (t) => {
  const ep = await endpoint(es.publicPem, 'ES256', 204)
  t.teardown(ep.close)
  const r = await moatless(['agent', 'report', '--url', ep.url, '--device-id', 'laptop-42', '--key', ed.keyFile])
  t.equal(r.code, 1)
  t.match(r.err, /401 bad signature/)
})

t.test('--dry-run prints the posture and sends nothing', async (t) => {
  const ep = await endpoint(es.publicPem, 'ES256', 204)
  t.teardown(ep.close)
  const r = await moatless(['agent', 'report', '--dry-run', '--url', ep.url, '--device-id', 'laptop-42', '--key', es.keyFile])
  t.equal(r.code, 0, r.err)
  t.equal(ep.received.length, 0, 'no request')
  const posture = JSON.parse(r.out) as Record<string, unknown>
  t.type(posture.os, 'string')
  t.match(r.err, new RegExp(`^dry run: nothing sent \\(would POST to ${ep.url}/\\.moatless/device/report as laptop-42, ES256\\)`))

  const bare = await moatless(['agent', 'report', '--dry-run'])
  t.equal(bare.code, 0, 'no key or URL needed to look at the posture')
  t.doesNotThrow(() => JSON.parse(bare.out))
  t.equal(ep.received.length, 0)
})

t.test('usage errors are caught before anything is collected or sent', async (t) => {
  const missing = await moatless(['agent', 'report', '--url', 'http://127.0.0.1:9'])
  t.equal(missing.code, 1)
  t.match(missing.err, /missing --device-id, --key/)
  t.equal(missing.out, '')

  const badUrl = await moatless(['agent', 'report', '--url', 'auth.example.com', '--device-id', 'x', '--key', es.keyFile])
  t.equal(badUrl.code, 1)
  t.match(badUrl.err, /not a URL/)

  const notAKey = join(dir, 'not-a-key.pem')
  writeFileSync(notAKey, 'hello', { mode: 0o600 })
  const badKey = await moatless(['agent', 'report', '--url', 'http://127.0.0.1:9', '--device-id', 'x', '--key', notAKey])
  t.equal(badKey.code, 1)
  t.match(badKey.err, /--key .*not a PEM private key/)

  const noFile = await moatless(['agent', 'report', '--url', 'http://127.0.0.1:9', '--device-id', 'x', '--key', join(dir, 'nope.pem')])
  t.equal(noFile.code, 1)
  t.match(noFile.err, /ENOENT/)
})

t.test('an authenticate URL under .localhost (the demo\'s) reaches loopback', async (t) => {
  const ep = await endpoint(es.publicPem, 'ES256', 204, undefined, 'auth.localhost')
  t.teardown(ep.close)
  const r = await moatless(['agent', 'report', '--url', ep.url, '--device-id', 'laptop-42', '--key', es.keyFile])
  t.equal(r.code, 0, r.err)
  t.equal(ep.received[0]?.claims?.aud, `${ep.url}/.moatless/device/report`)
})

t.test('server unreachable: exit 1 with the cause', async (t) => {
  const ep = await endpoint(es.publicPem, 'ES256', 204)
  const url = ep.url
  await ep.close()
  const r = await moatless(['agent', 'report', '--url', url, '--device-id', 'laptop-42', '--key', es.keyFile])
  t.equal(r.code, 1)
  t.match(r.err, /ECONNREFUSED/)
})

t.test('https with --ca', async (t) => {
  const ca = await createTestCa()
  const cert = await ca.issue({ commonName: '127.0.0.1', ips: ['127.0.0.1'] })
  const ep = await endpoint(es.publicPem, 'ES256', 204, { cert: cert.cert, key: cert.key })
  t.teardown(ep.close)
  const caFile = join(dir, 'ca.pem')
  writeFileSync(caFile, ca.cert)

  const untrusted = await moatless(['agent', 'report', '--url', ep.url, '--device-id', 'laptop-42', '--key', es.keyFile])
  t.equal(untrusted.code, 1, 'an unknown CA is refused')
  t.match(untrusted.err, /certificate/i)
  t.equal(ep.received.length, 0)

  const r = await moatless(['agent', 'report', '--url', ep.url, '--device-id', 'laptop-42', '--key', es.keyFile, '--ca', caFile])
  t.equal(r.code, 0, r.err)
  t.equal(ep.received[0]?.claims?.aud, `${ep.url}/.moatless/device/report`)
})
