import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Browser } from '../helpers/browser.js'
import { createTestCa } from '../helpers/tls.js'
import { startStack, browserSignIn } from '../helpers/stack.js'

const ca = await createTestCa()
const server = await ca.issue({ commonName: 'moatless', dns: ['auth.localhost', 'wiki.localhost', '*.localhost'] })
const dir = mkdtempSync(join(tmpdir(), 'moatless-tls-'))
writeFileSync(join(dir, 'proxy.crt'), server.cert)
writeFileSync(join(dir, 'proxy.key'), server.key)

const stack = await startStack({
  apps: { wiki: { identity_headers: true, rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] } },
  tls: { cert: join(dir, 'proxy.crt'), key: join(dir, 'proxy.key') }
})
t.teardown(() => stack.close())

t.test('over https: the same flow, with __Host- Secure cookies', async (t) => {
  const browser = new Browser({ ca: ca.cert })
  const { final, chain } = await browserSignIn(browser, stack, `${stack.origin('wiki')}/page`, 'alice')
  t.equal(final.status, 200, chain.join(' → '))
  t.ok(stack.origin('wiki').startsWith('https://'))
  const cookies = browser.storedCookies().filter((c) => c.name.includes('moatless'))
  t.ok(cookies.length >= 2, 'session cookies on the auth and app origins')
  for (const c of cookies) {
    t.ok(c.name.startsWith('__Host-'), `${c.name} is __Host- prefixed`)
    t.equal(c.secure, true)
    t.equal(c.hostOnly, true)
    t.equal(c.path, '/')
  }
  const seen = stack.upstream.requests.at(-1)
  t.equal(seen?.headers['x-forwarded-proto'], 'https')
  t.equal(seen?.headers['x-moatless-email'], 'alice@example.com')
  t.notMatch(String(seen?.headers.cookie ?? ''), /moatless/i)
})
