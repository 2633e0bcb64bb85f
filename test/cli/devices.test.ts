/**
 * `moatless devices enroll|set|list|show|revoke` run as a user runs them (the built CLI in a
 * child process) against a private redis-server; the test reads the same store directly and
 * watches the `device-changed` events that make every replica forget its cached copy.
 */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RedisStore, type StoreEvent } from '../../src/store/index.js'
import { cliStoreFixture, CONFIG_HEAD, runCli, until, type CliRun } from '../helpers/cli.js'
import { createTestCa } from '../helpers/tls.js'


// About forty CLI processes: slow on a busy machine, so more room than the default 120 s.
t.setTimeout(240_000)

const { dir, redis, stores } = await cliStoreFixture(t, 'devices-cli')

const run = (...args: string[]): Promise<CliRun> => runCli(args)

const head = `${CONFIG_HEAD}device_trust:
  levels:
    - name: known
      require: { enrolled: true }
    - name: managed
      require: { managed: true, disk_encrypted: true, screen_lock: true }
apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    rules: [{ name: staff, allow: { domains: [example.com] } }]
`

const ca = await createTestCa('Device CA')
const laptop = await ca.issue({ commonName: 'alice-laptop', usage: 'client' })
const files = {
  certPem: join(dir, 'laptop.crt'),
  certDer: join(dir, 'laptop.der'),
  caCert: join(dir, 'ca.crt'),
  ecPem: join(dir, 'ec.pub.pem'),
  edJwk: join(dir, 'ed.jwk'),
  rsaPem: join(dir, 'rsa.pub.pem'),
  garbage: join(dir, 'garbage.txt'),
  missing: join(dir, 'missing.pem')
}
writeFileSync(files.certPem, laptop.cert)
writeFileSync(files.caCert, ca.cert)
writeFileSync(files.certDer, Buffer.from(laptop.cert.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64'))
writeFileSync(files.ecPem, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }))
writeFileSync(files.edJwk, JSON.stringify(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' })))
writeFileSync(files.rsaPem, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }))
writeFileSync(files.garbage, 'not a certificate\n')

let n = 0
async function setup (): Promise<{ file: string; store: RedisStore; events: StoreEvent[] }> {
  const prefix = `devices${n++}:`
  const file = join(dir, `${prefix.slice(0, -1)}.yaml`)
  writeFileSync(file, `${head}store:\n  redis: ${redis.url}\n  key_prefix: "${prefix}"\n`)
  const store = new RedisStore({ redis: redis.url, key_prefix: prefix, store_outage_grace: 30_000 })
  stores.push(store)
  if (!await store.connect()) throw new Error('test store did not connect')
  const events: StoreEvent[] = []
  store.onEvent((e) => events.push(e))
  await new Promise((resolve) => setTimeout(resolve, 100)) // the subscription is in place
  return { file, store, events }
}

t.test('enroll by certificate file, fingerprint or public key; every change announced', async (t) => {
  const { file, store, events } = await setup()
  const byCert = await run('devices', 'enroll', '--config', file, '--id', 'alice-laptop', '--owner', 'Alice@Example.com', '--cert', files.certPem, '--managed')
  t.equal(byCert.code, 0, byCert.err)
  t.equal(byCert.out, `alice-laptop enrolled certificate ${laptop.fingerprint} (owner alice@example.com)\n`)
  const d = await store.getDevice('alice-laptop')
  t.match(d, { id: 'alice-laptop', owner: 'alice@example.com', cert_fingerprints: [laptop.fingerprint], public_keys: [], managed: true, corp_owned: false, status: 'active', posture: {} })
  t.ok(await until(() => events.some((e) => e.type === 'device-changed' && e.id === 'alice-laptop')), 'device-changed published')
  t.equal((await store.deviceByFingerprint(laptop.fingerprint))?.id, 'alice-laptop')

  const der = await run('devices', 'enroll', '--config', file, '--id', 'alice-laptop', '--owner', 'alice@example.com', '--cert', files.certDer)
  t.equal(der.code, 0, der.err)
  t.equal((await store.getDevice('alice-laptop'))?.cert_fingerprints.length, 1, 'a DER file of the same certificate: same fingerprint, not added twice')

  const key = await run('devices', 'enroll', '--config', file, '--id', 'alice-laptop', '--owner', 'alice@example.com', '--public-key', files.ecPem, '--json')
  t.equal(key.code, 0, key.err)
  const doc = JSON.parse(key.out) as { enrolled: Record<string, unknown>; added_credential: boolean }
  t.equal(doc.added_credential, true, 'the same device, another credential')
  t.match(doc.enrolled, { id: 'alice-laptop', managed: true, trust: 'known', cert_fingerprints: [laptop.fingerprint], public_keys: [{ kty: 'EC', crv: 'P-256', alg: 'ES256' }] })

  const fp = 'AB:' + 'CD:'.repeat(30) + 'EF'
  const byFp = await run('devices', 'enroll', '--config', file, '--id', 'bob-desktop', '--owner', 'bob@example.com', '--cert-fingerprint', fp, '--corp-owned')
  t.equal(byFp.code, 0, byFp.err)
  t.same((await store.getDevice('bob-desktop'))?.cert_fingerprints, ['ab' + 'cd'.repeat(30) + 'ef'], 'lowercase hex, no colons')
  t.equal((await store.getDevice('bob-desktop'))?.corp_owned, true)

  const ed = await run('devices', 'enroll', '--config', file, '--id', 'carol-phone', '--owner', 'carol@example.com', '--public-key', files.edJwk)
  t.equal(ed.code, 0, ed.err)
  t.match(ed.out, /^carol-phone enrolled EdDSA public key \S+ \(owner carol@example\.com\)\n$/)
  t.match((await store.getDevice('carol-phone'))?.public_keys, [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' }])
})

t.test('enroll: clear errors, nothing written', async (t) => {
  const { file, store } = await setup()
  t.equal((await run('devices', 'enroll', '--config', file, '--id', 'a', '--owner', 'alice@example.com', '--cert', files.certPem)).code, 0)
  const cases: [string[], RegExp][] = [
    [['--id', 'x', '--owner', 'x@example.com'], /give exactly one of --cert FILE, --cert-fingerprint HEX or --public-key FILE/],
    [['--id', 'x', '--owner', 'x@example.com', '--cert', files.missing], /cannot read certificate file .*missing\.pem: ENOENT/],
    [['--id', 'x', '--owner', 'x@example.com', '--cert', files.garbage], /garbage\.txt is not a valid X\.509 certificate \(PEM or DER\)/],
    [['--id', 'x', '--owner', 'x@example.com', '--cert', files.caCert], /CA certificate, not a device certificate/],
    [['--id', 'x', '--owner', 'x@example.com', '--cert-fingerprint', 'abc'], /is not a SHA-256 fingerprint \(64 hex digits, colons allowed\)/],
    [['--id', 'x', '--owner', 'x@example.com', '--public-key', files.rsaPem], /rsa\.pub\.pem: unsupported key type RSA: only EC P-256 \(ES256\) or Ed25519 \(EdDSA\)/],
    [['--id', 'x', '--owner', 'x@example.com', '--public-key', files.garbage], /garbage\.txt: not a PEM public key/],
    [['--id', 'x', '--owner', 'x@example.com', '--cert', files.certPem], /certificate [0-9a-f]{64} is already enrolled for device a/],
    [['--id', 'a', '--owner', 'bob@example.com', '--cert-fingerprint', 'e'.repeat(64)], /device a is already enrolled for alice@example\.com/],
    [['--id', 'has space', '--owner', 'x@example.com', '--cert-fingerprint', 'e'.repeat(64)], /--id "has space": use 1-128 letters/],
    [['--id', 'x', '--owner', 'not-an-email', '--cert-fingerprint', 'e'.repeat(64)], /--owner "not-an-email" is not an email address/]
  ]
  const results = await Promise.all(cases.map(([args]) => run('devices', 'enroll', '--config', file, ...args)))
  results.forEach((r, i) => {
    const [args, message] = cases[i] as [string[], RegExp]
    t.equal(r.code, 1, args.join(' '))
    t.match(r.err, message, args.join(' '))
    t.equal(r.out, '')
  })
  t.same((await store.listDevices()).map((d) => d.id), ['a'], 'nothing else was enrolled')
  await store.revokeDevice('a')
  const revoked = await run('devices', 'enroll', '--config', file, '--id', 'a', '--owner', 'alice@example.com', '--cert-fingerprint', 'e'.repeat(64))
  t.equal(revoked.code, 1)
  t.match(revoked.err, /device a is revoked; enroll the device under a new id/)
})

t.test('set: attributes and posture as an MDM sync; counts as a fresh report', async (t) => {
  const { file, store, events } = await setup()
  await run('devices', 'enroll', '--config', file, '--id', 'alice-laptop', '--owner', 'alice@example.com', '--cert', files.certPem)
  const before = Date.now()
  const r = await run('devices', 'set', '--config', file, '--id', 'alice-laptop', 'managed=true', 'disk_encrypted=true', 'screen_lock=true', 'firewall=false', 'os=macOS', 'os_version=14.5', 'corp_owned=true')
  t.equal(r.code, 0, r.err)
  t.match(r.out, /^alice-laptop alice@example\.com active trust=managed managed=true corp_owned=true os=macos os_version=14\.5 disk_encrypted=true screen_lock=true firewall=false reported=\S+Z\n$/)
  const d = await store.getDevice('alice-laptop')
  t.match(d, { managed: true, corp_owned: true, posture: { os: 'macos', os_version: '14.5', disk_encrypted: true, screen_lock: true, firewall: false } })
  t.ok((d?.posture.reported_at ?? 0) >= before, 'posture.reported_at = now')
  t.ok(await until(() => events.filter((e) => e.type === 'device-changed').length >= 2), 'device-changed published')

  const json = await run('devices', 'set', '--config', file, '--id', 'alice-laptop', 'screen_lock=false', '--json')
  t.equal(json.code, 0, json.err)
  t.match(JSON.parse(json.out), { device: { id: 'alice-laptop', trust: 'known', lacks: ['screen lock is off'], posture: { screen_lock: false, disk_encrypted: true } } })

  const bad = await Promise.all([
    run('devices', 'set', '--config', file, '--id', 'alice-laptop', 'colour=blue'),
    run('devices', 'set', '--config', file, '--id', 'alice-laptop', 'firewall=yes'),
    run('devices', 'set', '--config', file, '--id', 'alice-laptop', 'firewall'),
    run('devices', 'set', '--config', file, '--id', 'nope', 'firewall=true')
  ])
  t.match(bad[0]?.err, /unknown key "colour" \(keys: managed, corp_owned, os, os_version, disk_encrypted, screen_lock, firewall\)/)
  t.match(bad[1]?.err, /bad value for firewall: expected true or false, got "yes"/)
  t.match(bad[2]?.err, /expected KEY=VALUE/)
  t.match(bad[3]?.err, /no device with id "nope"/)
  for (const b of bad) t.equal(b.code, 1)
  t.equal((await store.getDevice('alice-laptop'))?.posture.firewall, false, 'unchanged by the failed runs')
})

t.test('list and show: one record per line, id first; --json one document', async (t) => {
  const { file } = await setup()
  await run('devices', 'enroll', '--config', file, '--id', 'alice-laptop', '--owner', 'alice@example.com', '--cert', files.certPem)
  await run('devices', 'enroll', '--config', file, '--id', 'bob-desktop', '--owner', 'bob@example.com', '--public-key', files.ecPem, '--managed')
  const [list, json, show, showJson, missing] = await Promise.all([
    run('devices', 'list', '--config', file),
    run('devices', 'list', '--config', file, '--json'),
    run('devices', 'show', '--config', file, '--id', 'alice-laptop'),
    run('devices', 'show', '--config', file, '--id', 'bob-desktop', '--json'),
    run('devices', 'show', '--config', file, '--id', 'nope')
  ])
  t.equal(list.code, 0, list.err)
  const lines = list.out.trim().split('\n')
  t.equal(lines.length, 2)
  t.match(lines[0], /^alice-laptop alice@example\.com active trust=known managed=false corp_owned=false os=\? os_version=\? disk_encrypted=\? screen_lock=\? firewall=\? reported=-$/)
  t.match(lines[1], /^bob-desktop bob@example\.com active trust=known managed=true /)

  const doc = JSON.parse(json.out) as { devices: Record<string, unknown>[] }
  t.same(doc.devices.map((d) => d.id), ['alice-laptop', 'bob-desktop'])
  t.match(doc.devices[0], { owner: 'alice@example.com', status: 'active', trust: 'known', cert_fingerprints: [laptop.fingerprint], posture: { reported_at: null } })

  t.equal(show.code, 0, show.err)
  t.equal(show.out.split('\n').length, 2, 'one line')
  t.match(show.out, new RegExp(`^alice-laptop alice@example\\.com active trust=known .* certs=${laptop.fingerprint} keys=- created=\\S+Z updated=\\S+Z lacks="not managed by IT; no posture report yet: run the agent \\(moatless agent report\\)"\\n$`))
  t.match(JSON.parse(showJson.out), { device: { id: 'bob-desktop', managed: true, public_keys: [{ alg: 'ES256' }], lacks: [/no posture report yet/] } })
  t.equal(missing.code, 1)
  t.match(missing.err, /moatless devices show: no device with id "nope"/)
})

t.test('revoke: the record stays, revoked; announced; idempotent; unknown id is an error', async (t) => {
  const { file, store, events } = await setup()
  await run('devices', 'enroll', '--config', file, '--id', 'alice-laptop', '--owner', 'alice@example.com', '--cert', files.certPem)
  await until(() => events.length > 0)
  const count = events.length
  const r = await run('devices', 'revoke', '--config', file, '--id', 'alice-laptop')
  t.equal(r.code, 0, r.err)
  t.equal(r.out, 'alice-laptop revoked\n')
  t.equal((await store.getDevice('alice-laptop'))?.status, 'revoked')
  t.ok(await until(() => events.length > count && events.at(-1)?.type === 'device-changed'), 'device-changed published')
  const list = await run('devices', 'list', '--config', file)
  t.match(list.out, /^alice-laptop alice@example\.com revoked trust=none /)
  const again = await run('devices', 'revoke', '--config', file, '--id', 'alice-laptop', '--json')
  t.same(JSON.parse(again.out), { revoked: 'alice-laptop', already_revoked: true })
  const unknown = await run('devices', 'revoke', '--config', file, '--id', 'nope')
  t.equal(unknown.code, 1)
  t.match(unknown.err, /no device with id "nope"/)
})

t.test('a memory-store config: exit 1, it needs store.redis', async (t) => {
  const file = join(dir, 'memory.yaml')
  writeFileSync(file, head)
  const runs = await Promise.all([
    run('devices', 'list', '--config', file),
    run('devices', 'set', '--config', file, '--id', 'x', 'managed=true'),
    run('devices', 'enroll', '--config', file, '--id', 'x', '--owner', 'x@example.com', '--cert', files.certPem)
  ])
  for (const r of runs) {
    t.equal(r.code, 1)
    t.match(r.err, /memory\.yaml has no store\.redis; this command needs store\.redis/)
    t.equal(r.out, '')
  }
})
