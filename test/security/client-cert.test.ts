/**
 * Attack family: client-certificate header spoofing — a client sends the header that a
 * TLS-terminating load balancer uses to pass on the certificate it verified, and claims a device
 * (or an identity) it never proved over TLS; or the header travels on to an upstream that
 * believes it.
 *
 * Seen in: nginx `ssl_client_escaped_cert` / `X-SSL-Client-Cert` setups that did not overwrite
 * the header for clients without a certificate, Envoy's `forward_client_cert_details` modes
 * other than SANITIZE (the default), which pass a client-supplied `x-forwarded-client-cert`
 * (XFCC) on, and Traefik `passTLSClientCert` or
 * HAProxy `ssl_c_der` headers believed from any peer.
 *
 * Moatless reads `X-Client-Cert` only when the TCP peer is in `trusted_proxies`
 * (src/device-trust/stage.ts, `ctx.peerTrusted` from src/proxy/intake.ts), verifies it against
 * `client_ca` itself (src/device-trust/client-cert.ts), and never forwards it in any spelling
 * (src/proxy/headers.ts). test/integration/devices.test.ts covers the device flows in depth.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DeviceRecord } from '../../src/store/index.js'
import { Browser } from '../helpers/browser.js'
import { startStack, browserSignIn, HTML, type Stack } from '../helpers/stack.js'
import { createTestCa } from '../helpers/tls.js'
import { JSONH, mark } from './helpers.js'

const ca = await createTestCa('Server CA')
const deviceCa = await createTestCa('Device CA')
const server = await ca.issue({ commonName: 'moatless', dns: ['auth.localhost', 'wiki.localhost', 'secure.localhost'], ips: ['127.0.0.1'] })
const laptop = await deviceCa.issue({ commonName: 'alice-laptop', usage: 'client' })
const dir = mkdtempSync(join(tmpdir(), 'moatless-xcc-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'proxy.crt'), server.cert)
writeFileSync(join(dir, 'proxy.key'), server.key)
writeFileSync(join(dir, 'device-ca.crt'), deviceCa.cert)

const config = (trusted: string[]): Record<string, unknown> => ({
  trusted_proxies: trusted,
  listen: { tls: { client_ca: join(dir, 'device-ca.crt') } },
  device_trust: { levels: [{ name: 'known', require: { enrolled: true } }] }
})
const apps = {
  wiki: { identity_headers: true, rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] },
  secure: { rules: [{ name: 'staff-on-known-devices', allow: { domains: ['example.com'], device: { trust: 'known' } } }] }
}
const tls = { cert: join(dir, 'proxy.crt'), key: join(dir, 'proxy.key') }

async function enroll (s: Stack): Promise<void> {
  const now = Date.now()
  const record: DeviceRecord = { id: 'alice-laptop', owner: 'alice@example.com', cert_fingerprints: [laptop.fingerprint], public_keys: [], managed: false, corp_owned: false, posture: {}, status: 'active', created_at: now, updated_at: now }
  await s.moatless.store.putDevice(record)
}
async function signedIn (s: Stack, withCert: boolean): Promise<Browser> {
  const b = new Browser({ ca: ca.cert, ...(withCert ? { cert: laptop.cert, key: laptop.key } : {}) })
  t.teardown(() => b.close())
  await browserSignIn(b, s, `${s.origin('wiki')}/`, 'alice')
  await b.follow(`${s.origin('secure')}/`, { headers: HTML })
  return b
}
const forwarded = encodeURIComponent(laptop.cert)
const SPELLINGS = ['x-client-cert', 'X-Client-Cert', 'X-CLIENT-CERT', 'x_client_cert', 'X_Client_Cert']
const lastDecision = (s: Stack): Record<string, unknown> | undefined => s.logs.filter((l) => l.msg === 'decision').at(-1)

const open = await startStack({ apps, tls, config: config([]) })
t.teardown(() => open.close())
await enroll(open)

t.test('from a peer that is not a trusted proxy, X-Client-Cert names no device and never travels', async (t) => {
  const noCert = await signedIn(open, false)
  for (const name of SPELLINGS) {
    const m = mark(open)
    const res = await noCert.request(`${open.origin('secure')}/`, { headers: { ...JSONH, [name]: forwarded } })
    t.equal(res.status, 403, `${name}: the enrolled laptop's certificate in a header does not make a device`)
    t.equal(lastDecision(open)?.device_id, null, `${name}: no device in the decision`)
    t.same(m.since(), [], `${name}: nothing forwarded`)
    const wiki = await noCert.request(`${open.origin('wiki')}/`, { headers: { ...JSONH, [name]: forwarded } })
    t.equal(wiki.status, 200)
    const seen = m.since()[0]
    t.notOk(seen?.rawHeaders.some((h, i) => i % 2 === 0 && /^x[-_]client[-_]cert$/i.test(h)), `${name}: not forwarded to the upstream`)
  }
})

t.test('control: the same certificate over TLS is the device', async (t) => {
  const withCert = await signedIn(open, true)
  const res = await withCert.request(`${open.origin('secure')}/`, { headers: JSONH })
  t.equal(res.status, 200, 'proved over TLS: allowed')
  t.equal(lastDecision(open)?.device_id, 'alice-laptop')
})

t.test('from a trusted proxy, X-Client-Cert is believed, and still never forwarded', async (t) => {
  const behind = await startStack({ apps, tls, config: config(['127.0.0.1/32']) })
  t.teardown(() => behind.close())
  await enroll(behind)
  const lb = await signedIn(behind, false)
  const m = mark(behind)
  const res = await lb.request(`${behind.origin('secure')}/`, { headers: { ...JSONH, 'x-client-cert': forwarded } })
  t.equal(res.status, 200, 'the load balancer vouches for the certificate')
  t.equal(lastDecision(behind)?.device_id, 'alice-laptop')
  t.notOk(m.since()[0]?.rawHeaders.some((h, i) => i % 2 === 0 && /client[-_]cert/i.test(h)), 'not forwarded')
  const garbage = await lb.request(`${behind.origin('secure')}/`, { headers: { ...JSONH, 'x-client-cert': '-----BEGIN%20CERTIFICATE-----%0Agarbage' } })
  t.equal(garbage.status, 403, 'an unreadable certificate names no device')
  const underscore = await lb.request(`${behind.origin('secure')}/`, { headers: { ...JSONH, x_client_cert: forwarded } })
  t.equal(underscore.status, 403, 'only the exact header name counts, even from a trusted proxy')
})

t.test('regression: two X-Client-Cert headers from a trusted proxy name no device', async (t) => {
  // A load balancer that appends X-Client-Cert instead of replacing it lets the client's own
  // header ride along; Node joins duplicates and the first value would win. Two → none.
  const { Agent, request } = await import('undici')
  const { fixedLookup } = await import('../helpers/browser.js')
  const behind = await startStack({ apps, tls, config: config(['127.0.0.1/32']) })
  t.teardown(() => behind.close())
  await enroll(behind)
  const lb = await signedIn(behind, false)
  const cookie = lb.cookies(behind.origin('secure')).map((c) => `${c.name}=${c.value}`).join('; ')
  const agent = new Agent({ connect: { ca: ca.cert, lookup: fixedLookup('127.0.0.1') as never } })
  t.teardown(() => agent.close())
  const m = mark(behind)
  const res = await request(`${behind.origin('secure')}/`, {
    dispatcher: agent,
    headers: ['accept', 'application/json', 'cookie', cookie, 'x-client-cert', forwarded, 'x-client-cert', forwarded]
  })
  await res.body.text()
  t.equal(res.statusCode, 403, 'the device requirement is not met')
  t.equal(lastDecision(behind)?.device_id, null)
  t.same(m.since(), [], 'nothing forwarded')
})
