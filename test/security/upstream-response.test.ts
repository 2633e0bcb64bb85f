/**
 * What an app behind Moatless may and may not do to Moatless, and what Moatless asserts to it.
 *
 * - Cookie planting from an app: on plain-http origins a response's `Set-Cookie:
 *   moatless_session=...; Domain=localhost` would reach every sibling app origin (cookie tossing,
 *   as in the GitHub Pages / *.herokuapp.com write-ups). An app must never set, clear or plant
 *   Moatless's own cookies.
 * - The "nOAuth" pattern (Descope, 2023): an email address the IdP has not verified is only a
 *   claim; apps reading the assertion would take it as proof of identity.
 */
import t from 'tap'
import { createServer } from 'node:http'
import { decodeJwt } from 'jose'
import { Browser } from '../helpers/browser.js'
import { startStack, browserSignIn, HTML } from '../helpers/stack.js'

let seenAssertion: string | undefined
const planter = createServer((req, res) => {
  seenAssertion = req.headers['x-moatless-jwt-assertion'] as string | undefined
  res.writeHead(200, {
    'content-type': 'text/plain',
    'set-cookie': ['moatless_session=planted; Domain=localhost; Path=/', 'MOATLESS_LOGIN=x; Path=/', 'app_pref=dark; Path=/']
  })
  res.end('ok')
})
await new Promise<void>((resolve) => planter.listen(0, '127.0.0.1', () => resolve()))
t.teardown(() => planter.close())
const to = `http://127.0.0.1:${(planter.address() as { port: number }).port}`

const stack = await startStack({
  apps: {
    shop: { to, rules: [{ name: 'anyone', allow: { authenticated: true } }] }
  }
})
t.teardown(() => stack.close())

t.test('regression: an app cannot set Moatless cookies (planting across sibling origins)', async (t) => {
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stack, `${stack.origin('shop')}/`, 'alice')
  t.equal(final.status, 200)
  const res = await browser.request(`${stack.origin('shop')}/`, { headers: HTML })
  const cookies = (res.headers['set-cookie'] as string[] | undefined) ?? []
  t.same(cookies, ['app_pref=dark; Path=/'], 'only the app\'s own cookie reaches the browser')
  t.notOk(browser.cookies(stack.origin('shop')).some((c) => c.value === 'planted'))
})

t.test('regression: an unverified email is not asserted to the app', async (t) => {
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stack, `${stack.origin('shop')}/`, 'carol')
  t.equal(final.status, 200, 'carol is signed in (her email is not verified)')
  t.ok(seenAssertion)
  const claims = decodeJwt(seenAssertion as string)
  t.equal(claims.email, undefined, 'no email claim for an unverified address')
  t.equal(typeof claims.sub, 'string')
  await browserSignIn(new Browser(), stack, `${stack.origin('shop')}/`, 'alice')
  t.equal(decodeJwt(seenAssertion as string).email, 'alice@example.com', 'a verified one is asserted')
})
