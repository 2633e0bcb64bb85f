import t from 'tap'
import { Browser } from '../helpers/browser.js'
import { signOutAtIdp } from '../helpers/idp-login.js'
import { freePort } from '../helpers/ports.js'
import { startIdp } from '../../src/demo/idp.js'
import { startStack, browserSignIn, CLIENT_SECRET } from '../helpers/stack.js'

const JSONH = { accept: 'application/json' }
const port = await freePort()
const authUrl = `http://auth.localhost:${port}`
const idp = await startIdp({
  clients: [{
    client_id: 'moatless',
    client_secret: CLIENT_SECRET,
    redirect_uris: [`${authUrl}/.moatless/callback`],
    post_logout_redirect_uris: [`${authUrl}/.moatless/signed_out`],
    backchannel_logout_uri: `${authUrl}/.moatless/backchannel_logout`
  }]
})
const stack = await startStack({
  port,
  idp,
  apps: {
    eng: { websockets: true, rules: [{ name: 'engineers', allow: { groups: ['engineering'] } }] }
  },
  config: { session: { refresh_interval: '1s' } }
})
t.teardown(async () => { await stack.close(); await idp.close() })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
async function within (ms: number, cond: () => Promise<boolean>): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) { if (await cond()) return true; await sleep(50) }
  return false
}

t.test('removed from a group at the IdP: access ends after the next refresh', async (t) => {
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stack, `${stack.origin('eng')}/`, 'alice')
  t.equal(final.status, 200)
  idp.setUserGroups('alice', ['marketing'])
  await sleep(1100)
  // The first request after the interval starts the refresh; the change lands moments later.
  const denied = await within(3000, async () => (await browser.request(`${stack.origin('eng')}/`, { headers: JSONH })).status === 403)
  t.ok(denied, 'denied once the IdP says alice left engineering')
  const sessions = await stack.moatless.store.listSessions({ user: 'alice@example.com' })
  t.same(sessions.at(-1)?.groups, ['marketing'], 'the session carries the new groups')
  idp.setUserGroups('alice', ['engineering'])
})

t.test('disabled at the IdP: the failed refresh ends the session', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('eng')}/`, 'carol')
  t.equal((await browser.request(`${stack.origin('eng')}/`, { headers: JSONH })).status, 200)
  idp.disableUser('carol')
  await sleep(1100)
  const ended = await within(3000, async () => (await browser.request(`${stack.origin('eng')}/`, { headers: JSONH })).status === 401)
  t.ok(ended, 'session ended')
  t.same(await stack.moatless.store.listSessions({ user: 'carol@example.com' }), [])
})

t.test('back-channel logout from the IdP ends the session', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('eng')}/`, 'bob')
  // bob is not in engineering: 403 proves there is a session; 401 will prove it is gone.
  t.equal((await browser.request(`${stack.origin('eng')}/`, { headers: JSONH })).status, 403)
  // Sign out at the IdP directly (not through Moatless): the IdP calls our back-channel endpoint.
  const metadata = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json() as { end_session_endpoint: string }
  await signOutAtIdp(browser, `${metadata.end_session_endpoint}?client_id=moatless`)
  const ended = await within(3000, async () => (await browser.request(`${stack.origin('eng')}/`, { headers: JSONH })).status === 401)
  t.ok(ended, 'the IdP logout reached Moatless')
  const forged = await browser.request(`${authUrl}/.moatless/backchannel_logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEwMDEifQ.' })
  t.equal(forged.status, 400, 'an unsigned logout token is refused')
})
