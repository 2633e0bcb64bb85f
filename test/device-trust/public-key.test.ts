import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { calculateJwkThumbprint } from 'jose'
import { parseDevicePublicKey } from '../../src/device-trust/public-key.js'

t.test('EC P-256 and Ed25519, as PEM SPKI or JWK, become a public JWK with alg and kid', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const fromPem = await parseDevicePublicKey(ec.publicKey.export({ type: 'spki', format: 'pem' }) as string)
  t.equal(fromPem.alg, 'ES256')
  t.equal(fromPem.kty, 'EC')
  t.equal(fromPem.crv, 'P-256')
  t.equal(fromPem.kid, await calculateJwkThumbprint(ec.publicKey.export({ format: 'jwk' }) as { kty: string }))
  const fromJwk = await parseDevicePublicKey(JSON.stringify(ec.publicKey.export({ format: 'jwk' })))
  t.same(fromJwk, fromPem, 'the same key either way')

  const ed = generateKeyPairSync('ed25519')
  const edKey = await parseDevicePublicKey(ed.publicKey.export({ type: 'spki', format: 'pem' }) as string)
  t.same([edKey.alg, edKey.kty, edKey.crv, edKey.y], ['EdDSA', 'OKP', 'Ed25519', undefined])
})

t.test('a private JWK is reduced to its public part; a private PEM is refused', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const key = await parseDevicePublicKey(JSON.stringify(ec.privateKey.export({ format: 'jwk' })))
  t.notOk('d' in key, 'no private member stored')
  t.equal(key.alg, 'ES256')
  await t.rejects(parseDevicePublicKey(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), /this is a private key/)
})

t.test('other key types and garbage are refused with the reason', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  await t.rejects(parseDevicePublicKey(rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string), /unsupported key type RSA: only EC P-256 \(ES256\) or Ed25519 \(EdDSA\)/)
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' })
  await t.rejects(parseDevicePublicKey(p384.publicKey.export({ type: 'spki', format: 'pem' }) as string), /unsupported key type EC P-384/)
  const x25519 = generateKeyPairSync('x25519')
  await t.rejects(parseDevicePublicKey(x25519.publicKey.export({ type: 'spki', format: 'pem' }) as string), /unsupported key type X25519/)
  await t.rejects(parseDevicePublicKey('hello'), /not a PEM public key/)
  await t.rejects(parseDevicePublicKey('{"kty":"EC"}'), /not a valid public key/)
  await t.rejects(parseDevicePublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----'), /not a valid public key/)
})
