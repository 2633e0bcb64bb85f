import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, jwtVerify, createLocalJWKSet } from 'jose'
import { AssertionSigner } from '../../src/proxy/assertion.js'
import { MemoryStore } from '../../src/store/index.js'

const claims = { aud: 'https://wiki.example.com', sub: 'u1', email: 'a@example.com', groups: ['g'], device_id: null, device_trust: 'none' }

t.test('generated once and kept in the store: every replica signs with the same key', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const a = await AssertionSigner.load({ store, issuer: 'https://auth.example.com' })
  const b = await AssertionSigner.load({ store, issuer: 'https://auth.example.com' })
  t.same(a.jwks(), b.jwks())
  const jwt = await a.sign(claims)
  const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(b.jwks() as never), { issuer: 'https://auth.example.com', audience: claims.aud })
  t.equal(protectedHeader.alg, 'ES256')
  t.equal(protectedHeader.kid, a.jwks().keys[0]?.kid)
  t.equal(payload.sub, 'u1')
  t.equal((payload.exp as number) - (payload.iat as number), 300)
  t.notOk('d' in (a.jwks().keys[0] as object), 'no private part in the JWKS')
})

t.test('signing_key from a file; a non-ES256 key is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moatless-key-'))
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = await exportJWK(privateKey)
  writeFileSync(join(dir, 'k.jwk'), JSON.stringify(jwk))
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const s = await AssertionSigner.load({ file: join(dir, 'k.jwk'), store, issuer: 'i' })
  t.equal(s.jwks().keys[0]?.x, jwk.x)
  t.equal(await store.get('signing-key'), null, 'a configured key is not copied into the store')
  const rsa = await generateKeyPair('RS256', { extractable: true })
  writeFileSync(join(dir, 'rsa.jwk'), JSON.stringify(await exportJWK(rsa.privateKey)))
  await t.rejects(AssertionSigner.load({ file: join(dir, 'rsa.jwk'), store, issuer: 'i' }), /ES256/)
})

t.test('a signed assertion is reused briefly, then re-signed', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const s = await AssertionSigner.load({ store, issuer: 'i' })
  const now = Date.now()
  const first = await s.sign(claims, now)
  t.equal(await s.sign(claims, now + 30_000), first)
  t.not(await s.sign(claims, now + 61_000), first)
  t.not(await s.sign({ ...claims, groups: ['other'] }, now), first, 'different claims, different assertion')
})
