/**
 * Device identification and grading against a real MemoryStore, with a frozen clock and a
 * count of store calls: the steady state must not ask the store at all.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose'
import type { Identity } from '../../src/context.js'
import { DeviceTrust, type DeviceEvidence } from '../../src/device-trust/device-trust.js'
import { DeviceInventory } from '../../src/device-trust/inventory.js'
import { parseDevicePublicKey } from '../../src/device-trust/public-key.js'
import { TrustLevels } from '../../src/device-trust/trust-levels.js'
import { MemoryStore, type DeviceRecord, type Store } from '../../src/store/index.js'

const AUD = 'https://auth.example.com'
const HOUR = 3_600_000
let clock = Date.parse('2030-06-01T12:00:00Z')
const now = (): number => clock

interface Harness {
  store: MemoryStore
  /** The store as the proxy sees it: counts calls, and can be "down". */
  seen: Store
  calls: Record<string, number>
  down (): void
  up (): void
  recover (): void
  trust: DeviceTrust
}

function harness (opts: { graceMs?: number; store?: MemoryStore } = {}): Harness {
  const store = opts.store ?? new MemoryStore({ now })
  t.teardown(() => store.close())
  const calls: Record<string, number> = {}
  let healthy = true
  let downSince = 0
  const recoverListeners: (() => void)[] = []
  const seen = new Proxy(store, {
    get (target, prop, receiver) {
      if (prop === 'healthy') return healthy
      if (prop === 'lastHealthyAt') return () => healthy ? clock : downSince
      if (prop === 'onRecover') return (l: () => void) => recoverListeners.push(l)
      const v = Reflect.get(target, prop, receiver) as unknown
      if (typeof v !== 'function') return v
      return (...args: unknown[]) => {
        const name = String(prop)
        if (!['onEvent', 'publish'].includes(name)) calls[name] = (calls[name] ?? 0) + 1
        if (!healthy && name !== 'onEvent') return Promise.reject(new Error('store down'))
        return (v as (...a: unknown[]) => unknown).apply(target, args)
      }
    }
  }) as Store
  const levels = new TrustLevels([
    { name: 'known', require: { enrolled: true } },
    { name: 'managed', require: { managed: true, disk_encrypted: true, screen_lock: true } }
  ], 24 * HOUR)
  const graceMs = opts.graceMs ?? 30_000
  const trust = new DeviceTrust({
    store: seen,
    inventory: new DeviceInventory(seen, { outageGraceMs: graceMs, now }),
    levels,
    certificates: null,
    audience: AUD,
    outageGraceMs: graceMs,
    now
  })
  return {
    store,
    seen,
    calls,
    down () { healthy = false; downSince = clock },
    up () { healthy = true },
    recover () { healthy = true; for (const l of recoverListeners) l() },
    trust
  }
}

const alice: Identity = { sub: 'u1', email: 'Alice@Example.com', email_verified: true, groups: [], claims: {}, via: 'session' }
const bob: Identity = { sub: 'u2', email: 'bob@example.com', email_verified: true, groups: [], claims: {}, via: 'session' }
const FP = 'ab'.repeat(32)
const byCert = (fingerprint = FP): DeviceEvidence => ({ socketFingerprint: fingerprint, forwardedCert: undefined, token: undefined })
const byToken = (token: string): DeviceEvidence => ({ socketFingerprint: null, forwardedCert: undefined, token })
const total = (calls: Record<string, number>): number => Object.values(calls).reduce((a, b) => a + b, 0)
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20))

const deviceKey = await generateKeyPair('ES256', { extractable: true })
const otherKey = await generateKeyPair('ES256', { extractable: true })
const edKey = await generateKeyPair('EdDSA', { extractable: true, crv: 'Ed25519' })
const enrolledKey = await parseDevicePublicKey(await exportSPKI(deviceKey.publicKey))
const enrolledEdKey = await parseDevicePublicKey(await exportSPKI(edKey.publicKey))

function laptop (over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    id: 'laptop-1',
    owner: 'alice@example.com',
    cert_fingerprints: [FP],
    public_keys: [enrolledKey, enrolledEdKey],
    managed: true,
    corp_owned: true,
    posture: { disk_encrypted: true, screen_lock: true, reported_at: clock - HOUR },
    status: 'active',
    created_at: clock - HOUR,
    updated_at: clock - HOUR,
    ...over
  }
}

interface TokenOptions { key?: CryptoKey; alg?: string; iss?: string; sub?: string; aud?: string; iat?: number; exp?: number; jti?: string | null }
async function token (o: TokenOptions = {}): Promise<string> {
  const iat = o.iat ?? Math.floor(clock / 1000)
  const jwt = new SignJWT(o.jti === null ? {} : { jti: o.jti ?? randomUUID() })
    .setProtectedHeader({ alg: o.alg ?? 'ES256' })
    .setIssuer(o.iss ?? 'laptop-1')
    .setSubject(o.sub ?? o.iss ?? 'laptop-1')
    .setAudience(o.aud ?? AUD)
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 120)
  return await jwt.sign(o.key ?? deviceKey.privateKey)
}

t.test('by certificate: the owner gets the grade; anyone else, a revoked or unknown device: none', async (t) => {
  const h = harness()
  await h.store.putDevice(laptop())
  await settle()
  const d = await h.trust.identify(byCert(), alice)
  t.match(d, { id: 'laptop-1', trust: 'managed', trustRank: 2, reasons: [] })
  const other = await h.trust.identify(byCert(), bob)
  t.match(other, { id: null, trust: 'none', trustRank: 0, reasons: ['this device belongs to someone else'] }, 'no id: a `device: { ids }` rule must not match for bob')
  const unverified = await h.trust.identify(byCert(), { ...alice, email_verified: false })
  t.match(unverified, { id: null, reasons: ['this device belongs to someone else'] }, 'an unverified email is not the owner')
  t.match(await h.trust.identify(byCert('cd'.repeat(32)), alice), { id: null, trust: 'none', reasons: ['this device\'s certificate is not enrolled'] })
  await h.store.revokeDevice('laptop-1')
  await settle()
  t.match(await h.trust.identify(byCert(), alice), { id: null, trust: 'none', reasons: ['this device was revoked'] })
  t.same(await h.trust.identify({ socketFingerprint: null, forwardedCert: undefined, token: undefined }, alice), { id: null, trust: 'none', trustRank: 0, reasons: [] }, 'no evidence: none, nothing to say')
})

t.test('steady state: no store round trip; device-changed evicts at once', async (t) => {
  const h = harness()
  await h.store.putDevice(laptop({ managed: false }))
  await settle()
  t.equal((await h.trust.identify(byCert(), alice) as { trust: string }).trust, 'known')
  const before = total(h.calls)
  for (let i = 0; i < 50; i++) await h.trust.identify(byCert(), alice)
  t.equal(total(h.calls) - before, 0, '50 requests, no store call')
  await h.store.updateDevice('laptop-1', (d) => ({ ...d, managed: true }))
  await settle()
  t.equal((await h.trust.identify(byCert(), alice) as { trust: string }).trust, 'managed', 'the change is seen on the next request')
  // An unknown certificate is remembered too, until any device changes.
  const unknown = 'ef'.repeat(32)
  await h.trust.identify(byCert(unknown), alice)
  const mid = total(h.calls)
  await h.trust.identify(byCert(unknown), alice)
  t.equal(total(h.calls), mid, 'a negative answer is cached')
  await h.store.putDevice(laptop({ id: 'laptop-2', cert_fingerprints: [unknown] }))
  await settle()
  t.match(await h.trust.identify(byCert(unknown), alice), { id: 'laptop-2' }, 'newly enrolled certificate recognized at once')
})

t.test('when cached answers run out, requests in flight at once ask the store once', async (t) => {
  const h = harness()
  const start = clock
  t.teardown(() => { clock = start })
  await h.store.putDevice(laptop())
  await settle()
  const grade = async (evidence: DeviceEvidence): Promise<string[]> =>
    (await Promise.all(Array.from({ length: 32 }, async () => await h.trust.identify(evidence, alice)))).map((d) => (d as { trust: string }).trust)
  const cases: [string, () => void][] = [
    ['first requests, nothing cached', () => {}],
    ['the cached answers are past their 60 s', () => { clock += 61_000 }]
  ]
  for (const [name, before] of cases) {
    before()
    const calls = { ...h.calls }
    t.same(await grade(byCert()), Array(32).fill('managed'), `${name}: all 32 graded`)
    const delta = Object.fromEntries(Object.entries(h.calls).map(([k, v]) => [k, v - (calls[k] ?? 0)]).filter(([, v]) => v !== 0))
    t.same(delta, { deviceByFingerprint: 1 }, `${name}: one store read for 32 requests`)
  }
})

t.test('a posture report going stale lowers the grade without any event', async (t) => {
  const h = harness()
  await h.store.putDevice(laptop())
  await settle()
  t.equal((await h.trust.identify(byCert(), alice) as { trust: string }).trust, 'managed')
  clock += 24 * HOUR
  const d = await h.trust.identify(byCert(), alice)
  t.match(d, { trust: 'known', reasons: ['posture report is 25 hours old: run the agent (moatless agent report)'] })
  clock -= 24 * HOUR
})

t.test('device tokens: verified once, then served from memory until they expire', async (t) => {
  const h = harness()
  await h.store.putDevice(laptop())
  await settle()
  const tok = await token()
  t.match(await h.trust.identify(byToken(tok), alice), { id: 'laptop-1', trust: 'managed' })
  t.equal(h.calls.claimOnce, 1, 'the jti is claimed on first sight')
  const before = total(h.calls)
  for (let i = 0; i < 20; i++) t.equal((await h.trust.identify(byToken(tok), alice) as { id: string }).id, 'laptop-1')
  t.equal(total(h.calls) - before, 0, 'the same token again: no store call')
  t.match(await h.trust.identify(byToken(await token({ key: edKey.privateKey, alg: 'EdDSA' })), alice), { id: 'laptop-1' }, 'EdDSA works too')

  // Another replica (same store) sees the same token: the same holder of the jti, accepted.
  const replica = harness({ store: h.store })
  t.match(await replica.trust.identify(byToken(tok), alice), { id: 'laptop-1' }, 'the same token on another replica')
  clock += 3 * 60_000 + 1000
  t.match(await h.trust.identify(byToken(tok), alice), { id: null, reasons: [/the device token was rejected \(the token is expired\)/] }, 'past exp (+ skew), no longer served from memory')
  clock -= 3 * 60_000 + 1000
  t.match(await h.trust.identify(byToken(tok), bob), { id: null, reasons: ['this device belongs to someone else'] }, 'bob with alice\'s device token')
})

t.test('device tokens that are not good enough: trust none, with the reason', async (t) => {
  const h = harness()
  await h.store.putDevice(laptop())
  await settle()
  const nowS = Math.floor(clock / 1000)
  const jti = randomUUID()
  await h.trust.identify(byToken(await token({ jti })), alice)
  const cases: [string, string | Promise<string>, RegExp][] = [
    ['a second token with a used jti (replay)', token({ jti, iat: nowS - 1 }), /jti\) was already used/],
    ['expired', token({ iat: nowS - 400, exp: nowS - 100 }), /expired/],
    ['signed by a key that is not enrolled', token({ key: otherKey.privateKey }), /bad signature/],
    ['wrong audience', token({ aud: 'https://wiki.example.com' }), /aud/],
    ['iss is another device', token({ iss: 'laptop-2', sub: 'laptop-2' }), /unknown device/],
    ['sub differs from iss', token({ sub: 'someone' }), /sub must equal iss/],
    ['lives longer than 5 minutes', token({ exp: nowS + 301 }), /longer than 5 minutes/],
    ['issued in the future', token({ iat: nowS + 120, exp: nowS + 200 }), /future/],
    ['without jti', token({ jti: null }), /no jti/],
    ['alg none', new UnsecuredJWT({ jti: randomUUID() }).setIssuer('laptop-1').setSubject('laptop-1').setAudience(AUD).setIssuedAt(nowS).setExpirationTime(nowS + 60).encode(), /algorithm none is not accepted/],
    ['not a JWT at all', 'hello', /not a JWT/]
  ]
  for (const [what, tok, reason] of cases) {
    const d = await h.trust.identify(byToken(await tok), alice)
    t.match(d, { id: null, trust: 'none', trustRank: 0 }, what)
    t.match((d as { reasons: string[] }).reasons[0], reason, `${what}: says why`)
  }
  const revokedKey = await token()
  await h.store.updateDevice('laptop-1', (d) => ({ ...d, public_keys: [] }))
  await settle()
  t.match(await h.trust.identify(byToken(revokedKey), alice), { id: null }, 'a key removed from the device no longer works')
})

t.test('store outage: cached devices within the grace only; 503 otherwise; cache dropped on recovery', async (t) => {
  const h = harness({ graceMs: 30_000 })
  await h.store.putDevice(laptop())
  await settle()
  await h.store.putDevice(laptop({ id: 'laptop-2', cert_fingerprints: ['cd'.repeat(32)] }))
  await settle()
  await h.trust.identify(byCert(), alice)
  h.down()
  t.match(await h.trust.identify(byCert(), alice), { id: 'laptop-1' }, 'verified before the outage, within the grace')
  t.equal(await h.trust.identify(byCert('cd'.repeat(32)), alice), 'unavailable', 'never seen: cannot be decided')
  t.match(await h.trust.identify(byToken(await token()), alice), { id: 'laptop-1' }, 'a new token of a device verified before: its signature, within the grace')
  t.equal(await h.trust.identify(byToken(await token({ iss: 'laptop-2' })), alice), 'unavailable', 'a token of a device never seen')
  clock += 31_000
  t.equal(await h.trust.identify(byCert(), alice), 'unavailable', 'past the grace')
  clock -= 31_000
  h.recover()
  const before = h.calls.deviceByFingerprint ?? 0
  t.match(await h.trust.identify(byCert(), alice), { id: 'laptop-1' })
  t.equal(h.calls.deviceByFingerprint, before + 1, 'asked the store again after recovery')
})

t.test('store outage with grace 0: refuse at once', async (t) => {
  const h = harness({ graceMs: 0 })
  await h.store.putDevice(laptop())
  await settle()
  await h.trust.identify(byCert(), alice)
  h.down()
  clock += 1
  t.equal(await h.trust.identify(byCert(), alice), 'unavailable')
  clock -= 1
  h.up()
})

t.test('recheck: a fresh grade from the store, for open connections', async (t) => {
  const h = harness()
  await h.store.putDevice(laptop())
  await settle()
  t.match(await h.trust.recheck('laptop-1', alice), { id: 'laptop-1', trust: 'managed' })
  t.match(await h.trust.recheck('laptop-1', bob), { id: null, trust: 'none' })
  t.match(await h.trust.recheck('missing', alice), { id: null, reasons: ['this device is no longer enrolled'] })
  h.down()
  clock += 60_000
  t.same(await h.trust.recheck('laptop-1', alice), { id: 'laptop-1', trust: 'none', trustRank: 0, reasons: ['the device inventory cannot be reached'] }, 'fails closed but keeps the id for deny rules')
  clock -= 60_000
  h.up()
})
