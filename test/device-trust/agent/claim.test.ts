/** The report's pieces: the posture claim, the endpoint URL, the JWT, the server's reason. */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { answerReason, reportClaims, reportEndpoint, signReport } from '../../../src/device-trust/agent/report.js'
import { deviceKeyAlg, parseDevicePrivateKey } from '../../../src/device-trust/agent/keygen.js'
import { MAX_EXTRA_TEXT, anyTrue, postureClaim, type Posture } from '../../../src/device-trust/agent/types.js'

const posture: Posture = {
  os: 'linux',
  os_version: '6.1.0-18-amd64',
  disk_encrypted: true,
  screen_lock: null,
  firewall: false,
  extra: { evidence: { firewall: 'x'.repeat(5000) }, os_id: 'debian' }
}

t.test('postureClaim: unknown checks left out, evidence last and clipped', async (t) => {
  const c = postureClaim(posture)
  t.same(Object.keys(c), ['os', 'os_version', 'disk_encrypted', 'firewall', 'extra'])
  t.equal(c.disk_encrypted, true)
  t.equal(c.firewall, false, 'false is sent: it is known')
  t.notOk('screen_lock' in c)
  t.same(Object.keys(c.extra), ['os_id', 'evidence'])
  t.equal(c.extra.evidence.firewall?.length, MAX_EXTRA_TEXT)
  t.notOk('os_version' in postureClaim({ ...posture, os_version: '' }), 'an unknown version is left out too')
})

t.test('anyTrue', async (t) => {
  t.equal(anyTrue([null, true, false]), true)
  t.equal(anyTrue([null, false]), false)
  t.equal(anyTrue([null, null]), null)
  t.equal(anyTrue([]), null)
})

t.test('reportEndpoint', async (t) => {
  t.equal(reportEndpoint('https://auth.example.com'), 'https://auth.example.com/.moatless/device/report')
  t.equal(reportEndpoint('https://auth.example.com/'), 'https://auth.example.com/.moatless/device/report')
  t.equal(reportEndpoint('http://auth.localhost:8080'), 'http://auth.localhost:8080/.moatless/device/report')
  t.throws(() => reportEndpoint('auth.example.com'), /not a URL/)
  t.throws(() => reportEndpoint('ftp://auth.example.com'), /must be http/)
  t.throws(() => reportEndpoint('https://auth.example.com/?x=1'), /no query/)
})

t.test('the signed report: header, claims, size', async (t) => {
  for (const [type, alg] of [['ec', 'ES256'], ['ed25519', 'EdDSA']] as const) {
    const { privateKey } = type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519')
    t.equal(deviceKeyAlg(privateKey), alg)
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    const parsed = parseDevicePrivateKey(pem)
    t.equal(parsed.alg, alg)
    const claims = reportClaims('laptop-42', 'https://auth.example.com/.moatless/device/report', postureClaim(posture), 1_700_000_000)
    const jwt = await signReport(claims, parsed.key, parsed.alg)
    t.same(decodeProtectedHeader(jwt), { alg, typ: 'JWT' })
    const p = decodeJwt(jwt)
    t.match(p, { iss: 'laptop-42', sub: 'laptop-42', aud: 'https://auth.example.com/.moatless/device/report', iat: 1_700_000_000, exp: 1_700_000_120 })
    t.type(p.jti, 'string')
    t.ok(jwt.length < 8192, `fits the server's 8 KiB token limit (${jwt.length})`)
  }
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  t.throws(() => deviceKeyAlg(rsa), /rsa key; device keys are P-256/)
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
  t.throws(() => deviceKeyAlg(p384), /curve secp384r1/)
  t.throws(() => parseDevicePrivateKey('nope'), /not a PEM private key/)
})

t.test('answerReason', async (t) => {
  t.equal(answerReason(401, 'Unauthorized', '{"error":"unknown device"}'), 'unknown device')
  t.equal(answerReason(401, 'Unauthorized', '{"error":"unauthorized_device","reason":"unknown device","request_id":"r-1"}'),
    'unauthorized_device: unknown device (request id r-1)')
  t.equal(answerReason(400, 'Bad Request', 'the report has no posture claim\nmore'), 'the report has no posture claim')
  t.equal(answerReason(502, 'Bad Gateway', '<html><body>502</body></html>'), 'Bad Gateway')
  t.equal(answerReason(500, '', ''), 'HTTP 500')
})
