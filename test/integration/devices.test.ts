/**
 * Device trust end to end, over real TLS with client certificates: enrolment → `known`, a
 * signed posture report and an MDM sync → `managed` → allowed where the app wants it; a stale
 * report, a revocation, someone else's device, forged tokens → back down, each with its reason
 * on the deny page. Also the report endpoint's answers, X-Client-Cert from a trusted proxy
 * only, SNI/Host mismatch (421), websockets re-decided on device changes, and the device cache
 * on Redis (evicted by another process's change; an outage refuses what it cannot decide).
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { connect as tlsConnect } from 'node:tls'
import { join } from 'node:path'
import { decodeJwt, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import WebSocket from 'ws'
import { parseDevicePublicKey } from '../../src/device-trust/public-key.js'
import { applySettings, parseSetting } from '../../src/device-trust/posture.js'
import { RedisStore, type DeviceRecord, type Store } from '../../src/store/index.js'
import { Browser, type BrowserResponse } from '../helpers/browser.js'
import { startRedis } from '../helpers/redis.js'
import { startStack, browserSignIn, HTML, type Stack, type StackOptions } from '../helpers/stack.js'
import { createTestCa, type IssuedCert } from '../helpers/tls.js'

const JSONH = { accept: 'application/json' }
const DAY = 24 * 3_600_000

const ca = await createTestCa('Server CA')
const deviceCa = await createTestCa('Device CA')
const otherCa = await createTestCa('Not The Device CA')
const server = await ca.issue({ commonName: 'moatless', dns: ['auth.localhost', 'wiki.localhost', 'secure.localhost', 'chat.localhost'], ips: ['127.0.0.1'] })
const aliceLaptop = await deviceCa.issue({ commonName: 'alice-laptop', usage: 'client' })
const bobLaptop = await deviceCa.issue({ commonName: 'bob-laptop', usage: 'client' })
const strayCert = await otherCa.issue({ commonName: 'alice-laptop', usage: 'client' })
const dir = mkdtempSync(join(tmpdir(), 'moatless-devices-'))
writeFileSync(join(dir, 'proxy.crt'), server.cert)
writeFileSync(join(dir, 'proxy.key'), server.key)
writeFileSync(join(dir, 'device-ca.crt'), deviceCa.cert)
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const staff = { domains: ['example.com'] }
const apps: StackOptions['apps'] = {
  wiki: { rules: [{ name: 'staff', allow: staff }] },
  secure: { rules: [{ name: 'staff-on-managed-devices', allow: { ...staff, device: { trust: 'managed' } } }] },
  chat: { websockets: true, rules: [{ name: 'staff-on-managed-devices', allow: { ...staff, device: { trust: 'managed' } } }] }
}
const deviceConfig = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  listen: { tls: { client_ca: join(dir, 'device-ca.crt') } },
  device_trust: {
    report_max_age: '24h',
    levels: [
      { name: 'known', require: { enrolled: true } },
      { name: 'managed', require: { managed: true, disk_encrypted: true, screen_lock: true } }
    ]
  },
  ...extra
})
const tls = { cert: join(dir, 'proxy.crt'), key: join(dir, 'proxy.key') }

const stack = await startStack({ apps, tls, config: deviceConfig() })
t.teardown(() => stack.close())
const store = stack.moatless.store

const deviceKey = await generateKeyPair('ES256', { extractable: true })
const strangerKey = await generateKeyPair('ES256', { extractable: true })

function browserWith (cert?: IssuedCert): Browser {
  const b = new Browser({ ca: ca.cert, ...(cert === undefined ? {} : { cert: cert.cert, key: cert.key }) })
  t.teardown(() => b.close())
  return b
}

function record (id: string, owner: string, over: Partial<DeviceRecord> = {}): DeviceRecord {
  const now = Date.now()
  return { id, owner, cert_fingerprints: [], public_keys: [], managed: false, corp_owned: false, posture: {}, status: 'active', created_at: now, updated_at: now, ...over }
}

/** Writes like the CLI does, then waits for this replica to have heard of it. */
async function changed (s: Store, write: () => Promise<unknown>): Promise<void> {
  const heard = new Promise<void>((resolve) => s.onEvent((e) => { if (e.type === 'device-changed') resolve() }))
  await write()
  await heard
}

/** The assertion the upstream got with the last request. */
function lastAssertion (s: Stack): Record<string, unknown> {
  const a = s.upstream.requests.at(-1)?.headers['x-moatless-jwt-assertion']
  if (typeof a !== 'string') throw new Error('no assertion upstream')
  return decodeJwt(a) as Record<string, unknown>
}

/** The decision log line matching `pred` (written when the response ends: maybe just after the client saw it). */
async function logLine (s: Stack, pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 100; i++) {
    const found = s.logs.filter((l) => l.msg === 'decision' && pred(l)).at(-1)
    if (found !== undefined) return found
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return undefined
}

async function deviceToken (o: { key?: CryptoKey; iss?: string; aud?: string; iat?: number; exp?: number; authUrl?: string } = {}): Promise<string> {
  const iat = o.iat ?? Math.floor(Date.now() / 1000)
  return await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(o.iss ?? 'alice-laptop')
    .setSubject(o.iss ?? 'alice-laptop')
    .setAudience(o.aud ?? o.authUrl ?? stack.authUrl)
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 120)
    .sign(o.key ?? deviceKey.privateKey)
}

async function signedReport (posture: unknown, o: { key?: CryptoKey; iss?: string; aud?: string; iat?: number; exp?: number; jti?: string } = {}): Promise<string> {
  const iat = o.iat ?? Math.floor(Date.now() / 1000)
  const claims = posture === undefined ? {} : { posture }
  const jwt = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(o.iss ?? 'alice-laptop')
    .setAudience(o.aud ?? `${stack.authUrl}/.moatless/device/report`)
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 120)
    .setJti(o.jti ?? randomUUID())
    .sign(o.key ?? deviceKey.privateKey)
  return jwt
}

async function report (posture: unknown, o: Parameters<typeof signedReport>[1] = {}): Promise<BrowserResponse> {
  return await postReport(await signedReport(posture, o))
}

function postReport (body: string, contentType = 'application/jwt', url = `${stack.authUrl}/.moatless/device/report`): Promise<BrowserResponse> {
  return browserWith().request(url, { method: 'POST', headers: { 'content-type': contentType, ...JSONH }, body })
}

/** Signs in on each app's origin (each has its own session cookie). */
async function signIn (b: Browser, s: Stack, user: string, appNames = ['wiki', 'secure', 'chat']): Promise<void> {
  for (const a of appNames) await browserSignIn(b, s, `${s.origin(a)}/`, user)
}

const alice = browserWith(aliceLaptop)
await signIn(alice, stack, 'alice')

t.test('a client certificate names the device once it is enrolled: none → known', async (t) => {
  let res = await alice.request(`${stack.origin('wiki')}/`, { headers: JSONH })
  t.equal(res.status, 200)
  t.match(lastAssertion(stack), { device_id: null, device_trust: 'none' }, 'a certificate nobody enrolled: no device')

  await changed(store, () => store.putDevice(record('alice-laptop', 'alice@example.com', { cert_fingerprints: [aliceLaptop.fingerprint] })))
  res = await alice.request(`${stack.origin('wiki')}/page`, { headers: JSONH })
  t.equal(res.status, 200)
  t.match(lastAssertion(stack), { email: 'alice@example.com', device_id: 'alice-laptop', device_trust: 'known' }, 'the assertion carries the device')
  const id = stack.upstream.requests.at(-1)?.headers['x-request-id']
  const line = await logLine(stack, (l) => l.request_id === id && l.status === res.status)
  t.match(line, { device_id: 'alice-laptop', device_trust: 'known', decision: 'allow', path: '/page' }, 'so does the decision log line')
  t.same(Object.keys(line ?? {}).filter((k) => !['level', 'pid', 'hostname', 'msg'].includes(k)).sort(),
    ['app', 'decision', 'device_id', 'device_trust', 'duration', 'method', 'path', 'reason', 'request_id', 'rule', 'status', 'time', 'user'])
  t.equal(stack.upstream.requests.at(-1)?.headers['x-client-cert'], undefined)
  const metrics = await new Browser().request(`${stack.adminUrl}/metrics`)
  t.match(metrics.body, /moatless_device_trust_requests_total\{trust="known"\} [1-9]/)
})

t.test('known is not enough for a managed app: the page says what is missing and what to do', async (t) => {
  const res = await alice.request(`${stack.origin('secure')}/`, { headers: HTML })
  t.equal(res.status, 403)
  t.match(res.body, 'This app needs a device at level <b>managed</b>; this device is <b>known</b>: not managed by IT, no posture report yet: run the agent (moatless agent report).')
  t.match(res.body, 'Ask IT to put this device under device management (MDM).')
  t.match(res.body, 'Run the Moatless device agent on this device (<code>moatless agent report</code>).')
  const api = await alice.request(`${stack.origin('secure')}/`, { headers: JSONH })
  t.match(JSON.parse(api.body), { error: 'forbidden', rule: 'default-deny' })
})

t.test('a signed posture report and an MDM sync make it managed: allowed', async (t) => {
  const key = await parseDevicePublicKey(await exportSPKI(deviceKey.publicKey))
  await changed(store, () => store.updateDevice('alice-laptop', (d) => ({ ...d, public_keys: [key] })))
  const res = await report({ os: 'macos', os_version: '14.6', disk_encrypted: false, screen_lock: true, firewall: true, agent_version: '1.0' })
  t.equal(res.status, 204, res.body)
  const stored = await store.getDevice('alice-laptop')
  t.match(stored?.posture, { os: 'macos', os_version: '14.6', disk_encrypted: false, screen_lock: true, extra: { agent_version: '1.0' } })
  t.ok(Math.abs((stored?.posture.reported_at ?? 0) - Date.now()) < 5000, 'reported now')
  const log = await logLine(stack, (l) => l.path === '/.moatless/device/report' && l.status === 204)
  t.match(log, { device_id: 'alice-laptop', app: 'authenticate' })

  await changed(store, () => store.updateDevice('alice-laptop', (d) => applySettings(d, ['managed=true'].map(parseSetting), Date.now())))
  let page = await alice.request(`${stack.origin('secure')}/`, { headers: HTML })
  t.equal(page.status, 403)
  t.match(page.body, 'this device is <b>known</b>: disk encryption is off.')
  t.match(page.body, 'Turn on disk encryption (FileVault / BitLocker / LUKS), then run <code>moatless agent report</code> on this device.')

  t.equal((await report({ os: 'macos', os_version: '14.6', disk_encrypted: true, screen_lock: true })).status, 204)
  page = await alice.request(`${stack.origin('secure')}/`, { headers: JSONH })
  t.equal(page.status, 200, 'managed device, allowed')
  t.match(lastAssertion(stack), { device_id: 'alice-laptop', device_trust: 'managed' })
})

t.test('a stale posture report counts as unknown: back to known, denied with the reason', async (t) => {
  await changed(store, () => store.updateDevice('alice-laptop', (d) => ({ ...d, posture: { ...d.posture, reported_at: Date.now() - 3 * DAY - 60_000 } })))
  const page = await alice.request(`${stack.origin('secure')}/`, { headers: HTML })
  t.equal(page.status, 403)
  t.match(page.body, 'this device is <b>known</b>: posture report is 3 days old: run the agent (moatless agent report).')
  t.match(page.body, /Request id: <code>[0-9a-f-]{36}<\/code>/)
  const line = await logLine(stack, (l) => l.app === 'secure' && l.status === 403 && String(l.reason).includes('3 days'))
  t.match(line, { device_id: 'alice-laptop', device_trust: 'known', reason: /posture report is 3 days old/ })
  await changed(store, () => store.updateDevice('alice-laptop', (d) => applySettings(d, [], Date.now())))
  t.equal((await alice.request(`${stack.origin('secure')}/`, { headers: JSONH })).status, 200, '`devices set` counts as a fresh report')
})

t.test('an open websocket is closed when its device stops qualifying', async (t) => {
  const options: WebSocket.ClientOptions & { servername: string } = {
    headers: { host: `chat.localhost:${stack.port}`, cookie: alice.cookieHeader(stack.origin('chat')) },
    servername: 'chat.localhost',
    ca: ca.cert,
    cert: aliceLaptop.cert,
    key: aliceLaptop.key
  }
  const ws = new WebSocket(`wss://127.0.0.1:${stack.port}/live`, options)
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  const closed = new Promise<number>((resolve) => ws.once('close', () => resolve(Date.now())))
  const at = Date.now()
  await store.updateDevice('alice-laptop', (d) => applySettings(d, [parseSetting('screen_lock=false')], Date.now()))
  const when = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 1500))])
  t.not(when, -1, 'closed')
  t.ok(when - at < 1000, `within ${when - at} ms`)
  await changed(store, () => store.updateDevice('alice-laptop', (d) => applySettings(d, [parseSetting('screen_lock=true')], Date.now())))
})

t.test('someone else\'s device is not trusted', async (t) => {
  await changed(store, () => store.putDevice(record('bob-laptop', 'bob@example.com', { cert_fingerprints: [bobLaptop.fingerprint], managed: true, posture: { disk_encrypted: true, screen_lock: true, reported_at: Date.now() } })))
  const aliceOnBobs = browserWith(bobLaptop)
  await signIn(aliceOnBobs, stack, 'alice', ['wiki', 'secure'])
  t.equal((await aliceOnBobs.request(`${stack.origin('wiki')}/`, { headers: JSONH })).status, 200)
  t.match(lastAssertion(stack), { email: 'alice@example.com', device_id: null, device_trust: 'none' })
  const page = await aliceOnBobs.request(`${stack.origin('secure')}/`, { headers: HTML })
  t.equal(page.status, 403)
  t.match(page.body, 'this device is not trusted: this device belongs to someone else.')
  t.match(page.body, 'Use your own enrolled device')

  const bob = browserWith(bobLaptop)
  await signIn(bob, stack, 'bob', ['secure'])
  t.equal((await bob.request(`${stack.origin('secure')}/`, { headers: JSONH })).status, 200, 'its owner is fine')
})

t.test('device tokens: an enrolled key\'s token identifies the device; forged and expired ones do not', async (t) => {
  const noCert = browserWith()
  await signIn(noCert, stack, 'alice', ['wiki', 'secure'])
  const get = async (token: string): Promise<number> => (await noCert.request(`${stack.origin('wiki')}/`, { headers: { ...JSONH, 'x-moatless-device': token } })).status
  t.equal(await get(await deviceToken()), 200)
  t.match(lastAssertion(stack), { device_id: 'alice-laptop', device_trust: 'managed' })
  t.equal(stack.upstream.requests.at(-1)?.headers['x-moatless-device'], undefined, 'the token is not forwarded')
  const ok = await noCert.request(`${stack.origin('secure')}/`, { headers: { ...JSONH, 'x-moatless-device': await deviceToken() } })
  t.equal(ok.status, 200, 'and opens the managed app')

  t.equal(await get(await deviceToken({ key: strangerKey.privateKey })), 200)
  t.match(lastAssertion(stack), { device_id: null, device_trust: 'none' }, 'forged (a key that is not enrolled)')
  const now = Math.floor(Date.now() / 1000)
  t.equal(await get(await deviceToken({ iat: now - 600, exp: now - 300 })), 200)
  t.match(lastAssertion(stack), { device_id: null, device_trust: 'none' }, 'expired')
  t.equal(await get(await deviceToken({ aud: stack.origin('wiki') })), 200)
  t.match(lastAssertion(stack), { device_id: null, device_trust: 'none' }, 'wrong audience')
  const denied = await noCert.request(`${stack.origin('secure')}/`, { headers: { ...HTML, 'x-moatless-device': await deviceToken({ key: strangerKey.privateKey }) } })
  t.equal(denied.status, 403)
  t.match(denied.body, 'the device token was rejected (bad signature)')
})

t.test('the report endpoint: 204 stored, 400 malformed, 401 not the device', async (t) => {
  const good = { os: 'macos', os_version: '14.6', disk_encrypted: true, screen_lock: true }
  const now = Math.floor(Date.now() / 1000)
  const cases: [string, Promise<BrowserResponse>, number, RegExp?][] = [
    ['stored', report(good), 204],
    ['not a JWT', postReport('this is not a jwt'), 400, /not a JWT/],
    ['a JWT without posture', report(undefined), 400, /no posture claim/],
    ['posture with a bad field type', report({ disk_encrypted: 'yes' }), 400, /disk_encrypted must be true or false/],
    ['unknown device', report(good, { iss: 'no-such-device' }), 401, /unknown device/],
    ['bad signature', report(good, { key: strangerKey.privateKey }), 401, /bad signature/],
    ['expired', report(good, { iat: now - 600, exp: now - 300 }), 401, /expired/],
    ['future-dated', report(good, { iat: now + 600, exp: now + 700 }), 401, /future/],
    ['wrong audience', report(good, { aud: stack.authUrl }), 401, /aud/],
    ['longer than 5 minutes', report(good, { exp: now + 600 }), 401, /5 minutes/]
  ]
  for (const [what, res, status, reason] of cases) {
    const r = await res
    t.equal(r.status, status, `${what}: ${r.body}`)
    if (reason !== undefined) t.match(JSON.parse(r.body).reason, reason, what)
  }
  const once = await signedReport(good, { jti: 'report-1' })
  t.equal((await postReport(once)).status, 204)
  t.equal((await postReport(once)).status, 204, 'the same report resent (a retry) is harmless')
  const replay = await report({ ...good, disk_encrypted: false }, { jti: 'report-1' })
  t.equal(replay.status, 401, 'another report with a used jti')
  t.match(JSON.parse(replay.body).reason, /already used/)
  t.equal((await postReport('{}', 'application/json')).status, 415, 'only application/jwt')
  t.equal((await postReport('x'.repeat(17 * 1024))).status, 413, 'at most 16 KiB')
  t.equal((await postReport(await deviceToken(), 'application/jwt', `${stack.origin('wiki')}/.moatless/device/report`)).status, 404, 'on the authenticate origin only')
  const key = await parseDevicePublicKey(await exportSPKI(deviceKey.publicKey))
  await changed(store, () => store.putDevice(record('old-laptop', 'alice@example.com', { status: 'revoked', public_keys: [key] })))
  const revoked = await report(good, { iss: 'old-laptop' })
  t.equal(revoked.status, 401)
  t.match(JSON.parse(revoked.body).reason, /revoked/)
})

/** One HTTP/1.1 request on a TLS connection opened for `servername`, bytes as given. */
function overTls (servername: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ port: stack.port, host: '127.0.0.1', servername, ca: ca.cert, cert: aliceLaptop.cert, key: aliceLaptop.key }, () => {
      sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
    })
    let data = ''
    sock.on('data', (d: Buffer) => { data += d.toString() })
    sock.on('error', reject)
    sock.on('end', () => {
      const idx = data.indexOf('\r\n\r\n')
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), body: data.slice(idx + 4) })
    })
  })
}

t.test('a TLS connection for one host name cannot ask for another: 421', async (t) => {
  const res = await overTls('wiki.localhost', `secure.localhost:${stack.port}`)
  t.equal(res.status, 421)
  t.match(JSON.parse(res.body), { error: 'misdirected_request' })
  const line = await logLine(stack, (l) => l.status === 421)
  t.match(line, { rule: 'misdirected', path: '/' })
  t.equal((await overTls('wiki.localhost', `WIKI.localhost:${stack.port}`)).status, 401, 'same name, any case, any port: on to the next stage')
  t.equal((await overTls('auth.localhost', `wiki.localhost:${stack.port}`)).status, 421, 'the authenticate origin\'s connection is not an app\'s')
})

t.test('X-Client-Cert is ignored from a peer that is not a trusted proxy', async (t) => {
  const noCert = browserWith()
  await signIn(noCert, stack, 'alice', ['wiki'])
  const res = await noCert.request(`${stack.origin('wiki')}/`, { headers: { ...JSONH, 'x-client-cert': encodeURIComponent(aliceLaptop.cert) } })
  t.equal(res.status, 200)
  t.match(lastAssertion(stack), { device_id: null, device_trust: 'none' })
  t.equal(stack.upstream.requests.at(-1)?.headers['x-client-cert'], undefined, 'and never forwarded')
})

t.test('revoked: trust none', async (t) => {
  await changed(store, () => store.revokeDevice('alice-laptop'))
  t.equal((await alice.request(`${stack.origin('wiki')}/`, { headers: JSONH })).status, 200)
  t.match(lastAssertion(stack), { device_id: null, device_trust: 'none' })
  const page = await alice.request(`${stack.origin('secure')}/`, { headers: HTML })
  t.equal(page.status, 403)
  t.match(page.body, 'this device was revoked')
})

t.test('X-Client-Cert from a trusted proxy is verified against client_ca and names the device', async (t) => {
  const behind = await startStack({ apps, tls, config: deviceConfig({ trusted_proxies: ['127.0.0.1/32'] }) })
  t.teardown(() => behind.close())
  await changed(behind.moatless.store, () => behind.moatless.store.putDevice(record('alice-laptop', 'alice@example.com', { cert_fingerprints: [aliceLaptop.fingerprint] })))
  const lb = browserWith()
  await signIn(lb, behind, 'alice', ['wiki', 'secure'])
  let res = await lb.request(`${behind.origin('wiki')}/`, { headers: { ...JSONH, 'x-client-cert': encodeURIComponent(aliceLaptop.cert) } })
  t.equal(res.status, 200)
  t.match(lastAssertion(behind), { device_id: 'alice-laptop', device_trust: 'known' })
  t.equal(behind.upstream.requests.at(-1)?.headers['x-client-cert'], undefined, 'not forwarded upstream')

  res = await lb.request(`${behind.origin('wiki')}/`, { headers: { ...JSONH, 'x-client-cert': encodeURIComponent(strayCert.cert) } })
  t.equal(res.status, 200)
  t.match(lastAssertion(behind), { device_id: null, device_trust: 'none' }, 'a certificate from another CA names nothing')
  const page = await lb.request(`${behind.origin('secure')}/`, { headers: { ...HTML, 'x-client-cert': encodeURIComponent(strayCert.cert) } })
  t.match(page.body, 'not signed by client_ca')
})

t.test('on Redis: another process\'s change reaches the device cache within 1 s; an outage refuses what it cannot decide', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.close())
  const onRedis = await startStack({ apps, tls, redisUrl: redis.url, config: deviceConfig({ store: { store_outage_grace: '30s' } }) })
  t.teardown(() => onRedis.close())
  const cli = new RedisStore({ redis: redis.url, key_prefix: onRedis.config.store?.key_prefix ?? '', store_outage_grace: 30_000 })
  t.teardown(() => cli.close())
  t.equal(await cli.connect(), true)
  await changed(onRedis.moatless.store, () => cli.putDevice(record('alice-laptop', 'alice@example.com', { cert_fingerprints: [aliceLaptop.fingerprint] })))
  const b = browserWith(aliceLaptop)
  await browserSignIn(b, onRedis, `${onRedis.origin('wiki')}/`, 'alice')
  t.equal((await b.request(`${onRedis.origin('wiki')}/`, { headers: JSONH })).status, 200)
  t.match(lastAssertion(onRedis), { device_id: 'alice-laptop', device_trust: 'known' })

  const at = Date.now()
  await cli.revokeDevice('alice-laptop')
  let seen = false
  while (!seen && Date.now() - at < 1000) {
    await b.request(`${onRedis.origin('wiki')}/`, { headers: JSONH })
    seen = lastAssertion(onRedis).device_id === null
    if (!seen) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(seen, `revocation seen within ${Date.now() - at} ms`)

  // Bob signs in with a certificate nobody has enrolled yet; then it is enrolled, and Redis
  // goes away before this replica ever looked the device up.
  const bob = browserWith(bobLaptop)
  await signIn(bob, onRedis, 'bob', ['wiki'])
  const noDevice = browserWith()
  await signIn(noDevice, onRedis, 'alice', ['wiki'])
  await changed(onRedis.moatless.store, () => cli.putDevice(record('bob-laptop', 'bob@example.com', { cert_fingerprints: [bobLaptop.fingerprint] })))
  await redis.stop()
  for (let i = 0; i < 100 && onRedis.moatless.store.healthy; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  const before = onRedis.upstream.requests.length
  const refused = await bob.request(`${onRedis.origin('wiki')}/`, { headers: JSONH })
  t.equal(refused.status, 503, 'a device lookup that cannot be made: 503, never a guess')
  t.equal(onRedis.upstream.requests.length, before, 'nothing forwarded')
  t.equal((await noDevice.request(`${onRedis.origin('wiki')}/`, { headers: JSONH })).status, 200, 'no device involved: the verified session is served within the grace')
  await redis.start()
  for (let i = 0; i < 100 && !onRedis.moatless.store.healthy; i++) await new Promise((resolve) => setTimeout(resolve, 50))
})
