/** `moatless agent keygen`, run as a user runs it (the built CLI; `npm run build` first). */
import t from 'tap'
import { createPublicKey, createPrivateKey } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importPKCS8, importSPKI, jwtVerify, SignJWT } from 'jose'
import { moatless } from './helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'moatless-keygen-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const mode = (p: string): number => statSync(p).mode & 0o777

for (const alg of ['ES256', 'EdDSA'] as const) {
  t.test(`keygen --alg ${alg}`, async (t) => {
    const out = join(dir, alg, 'keys')
    const r = await moatless(['agent', 'keygen', '--out', out, '--alg', alg, '--id', 'laptop-42', '--owner', 'alice@example.com'])
    t.equal(r.code, 0, r.err)
    const keyFile = join(out, 'device.key.pem')
    const pubFile = join(out, 'device.pub.pem')
    if (process.platform !== 'win32') {
      t.equal(mode(keyFile), 0o600, 'private key mode 0600')
      t.equal(mode(pubFile), 0o644, 'public key mode 0644')
      t.equal(mode(out), 0o700, 'a new directory is 0700')
    }
    const privatePem = readFileSync(keyFile, 'utf8')
    const publicPem = readFileSync(pubFile, 'utf8')
    t.match(privatePem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 PEM')
    t.match(publicPem, /^-----BEGIN PUBLIC KEY-----\n/, 'SPKI PEM')
    t.ok(r.out.includes(publicPem.trim()), 'prints the public key')
    t.notOk(r.out.includes('PRIVATE KEY'), 'never prints the private key')
    t.ok(r.out.includes(`moatless devices enroll --config FILE --id laptop-42 --owner alice@example.com --public-key ${pubFile}`), 'prints the enroll command')
    t.ok(r.out.includes(`moatless agent report --url AUTH_URL --device-id laptop-42 --key ${keyFile}`))

    const pub = createPublicKey(publicPem)
    if (alg === 'ES256') {
      t.equal(pub.asymmetricKeyType, 'ec')
      t.equal(pub.asymmetricKeyDetails?.namedCurve, 'prime256v1')
    } else {
      t.equal(pub.asymmetricKeyType, 'ed25519')
    }
    t.equal(createPrivateKey(privatePem).asymmetricKeyType, pub.asymmetricKeyType)

    // the pair belongs together: what one signs, the other verifies
    const jwt = await new SignJWT({ x: 1 }).setProtectedHeader({ alg }).sign(await importPKCS8(privatePem, alg))
    const { payload } = await jwtVerify(jwt, await importSPKI(publicPem, alg), { algorithms: [alg] })
    t.equal(payload.x, 1)
  })
}

t.test('an existing key is not replaced without --force', async (t) => {
  const out = join(dir, 'again')
  t.equal((await moatless(['agent', 'keygen', '--out', out])).code, 0)
  const before = readFileSync(join(out, 'device.key.pem'), 'utf8')
  const r = await moatless(['agent', 'keygen', '--out', out])
  t.equal(r.code, 1)
  t.match(r.err, /device\.key\.pem already exists; pass --force/)
  t.equal(readFileSync(join(out, 'device.key.pem'), 'utf8'), before, 'untouched')

  // --force replaces it, and a file left world-readable becomes 0600 again
  writeFileSync(join(out, 'device.key.pem'), before, { mode: 0o644 })
  const forced = await moatless(['agent', 'keygen', '--out', out, '--force', '--alg', 'EdDSA'])
  t.equal(forced.code, 0, forced.err)
  t.not(readFileSync(join(out, 'device.key.pem'), 'utf8'), before)
  if (process.platform !== 'win32') t.equal(mode(join(out, 'device.key.pem')), 0o600)
})

t.test('defaults: current directory, ES256, placeholders in the enroll command', async (t) => {
  const cwd = join(dir, 'cwd')
  t.equal((await moatless(['agent', 'keygen', '--out', cwd])).code, 0) // creates the directory
  rmSync(join(cwd, 'device.key.pem'))
  rmSync(join(cwd, 'device.pub.pem'))
  const r = await moatless(['agent', 'keygen'], { cwd })
  t.equal(r.code, 0, r.err)
  t.match(r.out, /^wrote device\.key\.pem \(ES256 private key, mode 0600/m)
  t.match(r.out, /moatless devices enroll --config FILE --id ID --owner EMAIL --public-key device\.pub\.pem\n/)
  t.equal(createPublicKey(readFileSync(join(cwd, 'device.pub.pem'))).asymmetricKeyType, 'ec')
})

t.test('an unknown --alg is refused', async (t) => {
  const r = await moatless(['agent', 'keygen', '--out', join(dir, 'rsa'), '--alg', 'RS256'])
  t.equal(r.code, 1)
  t.match(r.err, /Allowed choices are ES256, EdDSA/)
})
