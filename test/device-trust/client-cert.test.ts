/**
 * X-Client-Cert from a load balancer: the certificate must be verified here, since the proxy
 * that forwards it only passes on what the client showed it. (Whether the peer is a trusted
 * proxy at all is checked before, in intake; see test/integration/devices.test.ts.)
 */
import t from 'tap'
import { ClientCertificates, normalizeFingerprint } from '../../src/device-trust/client-cert.js'
import { createTestCa } from '../helpers/tls.js'

const ca = await createTestCa('Device CA')
const other = await createTestCa('Someone Else CA')
const laptop = await ca.issue({ commonName: 'laptop-1', usage: 'client' })
const serverOnly = await ca.issue({ commonName: 'server', usage: 'server', dns: ['x.localhost'] })
const foreign = await other.issue({ commonName: 'laptop-1', usage: 'client' })
const certs = new ClientCertificates(other.cert + '\n' + ca.cert)
const now = Date.now()

t.test('a URL-encoded PEM (nginx $ssl_client_escaped_cert) chaining to client_ca is accepted', async (t) => {
  t.same(certs.fromHeader(encodeURIComponent(laptop.cert), now), { ok: true, fingerprint: laptop.fingerprint })
  t.same(certs.fromHeader(encodeURIComponent(laptop.cert), now), { ok: true, fingerprint: laptop.fingerprint }, 'cached')
  const base64 = laptop.cert.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')
  t.same(certs.fromHeader(base64, now), { ok: true, fingerprint: laptop.fingerprint }, 'bare base64 DER too')
})

t.test('signed by another CA, not a client certificate, expired, or garbage: refused', async (t) => {
  const onlyOurs = new ClientCertificates(ca.cert)
  t.match(onlyOurs.fromHeader(encodeURIComponent(foreign.cert), now), { ok: false, reason: /not signed by client_ca/ })
  t.match(certs.fromHeader(encodeURIComponent(serverOnly.cert), now), { ok: false, reason: /not for client authentication/ })
  t.match(certs.fromHeader(encodeURIComponent(ca.cert), now), { ok: false, reason: /CA certificate|not signed/ })
  t.match(certs.fromHeader(encodeURIComponent(laptop.cert), now + 3 * 24 * 3_600_000), { ok: false, reason: /expired/ })
  t.match(certs.fromHeader('%E0%A4%A', now), { ok: false, reason: /cannot be read/ })
  t.match(certs.fromHeader('not a certificate', now), { ok: false, reason: /cannot be read/ })
  t.match(certs.fromHeader('x'.repeat(20_000), now), { ok: false, reason: /too large/ })
})

t.test('fingerprints: lowercase hex, colons dropped', async (t) => {
  t.equal(normalizeFingerprint('AB:' + 'cd'.repeat(31)), 'ab' + 'cd'.repeat(31))
  t.equal(normalizeFingerprint('abc'), null)
  t.throws(() => new ClientCertificates('nothing'), /no PEM certificate/)
})
