import t from 'tap'
import WebSocket from 'ws'
import { encodeRuleSet } from '../../src/rules/ruleset.js'
import { Browser } from '../helpers/browser.js'
import { startStack, browserSignIn, HTML } from '../helpers/stack.js'

const rules = [{ name: 'staff', allow: { domains: ['example.com'] } }]
const stack = await startStack({
  apps: {
    chat: { websockets: true, rules },
    vault: { session_max_age: '1s', rules },
    notes: { rules }
  }
})
t.teardown(() => stack.close())
const JSONH = { accept: 'application/json' }

async function openWs (browser: Browser): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const cookie = browser.cookies(stack.origin('chat')).map((c) => `${c.name}=${c.value}`).join('; ')
  const ws = new WebSocket(`ws://127.0.0.1:${stack.port}/live`, { headers: { host: `chat.localhost:${stack.port}`, cookie } })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  return { ws, closed: new Promise((resolve) => ws.once('close', () => resolve(Date.now()))) }
}
const by = (ms: number) => new Promise<number>((resolve) => setTimeout(() => resolve(-1), ms))

t.test('an open websocket is closed when the rules stop allowing it', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('chat')}/`, 'alice')
  const { closed } = await openWs(browser)
  const other = new Browser()
  await browserSignIn(other, stack, `${stack.origin('chat')}/`, 'bob')
  const bobWs = await openWs(other)
  t.equal(stack.moatless.connections.size, 2)
  const apps = (stack.moatless.state.current.ruleset.apps.map((a) => a.config))
  const next = apps.map((a) => a.name === 'chat' ? { ...a, timeout: '30s', rules: [{ name: 'no-alice', deny: { users: ['alice@example.com'] } }, ...rules] } : { ...a, timeout: '30s', session_max_age: a.session_max_age === undefined ? undefined : '1s' })
  const { version, body } = encodeRuleSet(JSON.parse(JSON.stringify(next)), 'test')
  const changedAt = Date.now()
  await stack.moatless.store.putRuleSet(version, body)
  await stack.moatless.store.activateRuleSet(version)
  const at = await Promise.race([closed, by(1500)])
  t.not(at, -1, 'closed')
  t.ok(at - changedAt < 1000, `within ${at - changedAt} ms`)
  t.equal(bobWs.ws.readyState, WebSocket.OPEN, 'a connection still allowed stays open')
  bobWs.ws.close()
})

t.test('an open websocket is closed at sign-out', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, stack, `${stack.origin('chat')}/`, 'bob')
  const { closed } = await openWs(browser)
  await browser.request(`${stack.origin('chat')}/.moatless/sign_out`, { headers: HTML })
  t.not(await Promise.race([closed, by(1500)]), -1)
})

t.test('session_max_age forces a fresh sign-in on a sensitive app', async (t) => {
  const browser = new Browser()
  const { final } = await browserSignIn(browser, stack, `${stack.origin('vault')}/`, 'alice')
  t.equal(final.status, 200)
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await browser.request(`${stack.origin('vault')}/`, { headers: JSONH })).status, 401, 'too old for the vault')
  t.equal((await browser.follow(`${stack.origin('notes')}/`, { headers: HTML })).final.status, 200, 'still fine elsewhere')
  // A browser is sent to sign in again, and the IdP is asked to re-authenticate (max_age).
  const again = await browser.follow(`${stack.origin('vault')}/`, { headers: HTML }, 20, { stopBefore: (u) => u.origin === new URL(stack.idp.issuer).origin })
  const toIdp = again.final.headers.location as string
  t.ok(toIdp.startsWith(stack.idp.issuer), 'not handed the old session: off to the IdP')
  t.equal(new URL(toIdp).searchParams.get('max_age'), '1')
  const fresh = await browserSignIn(browser, stack, `${stack.origin('vault')}/`, 'alice')
  t.equal(fresh.final.status, 200, 'a fresh sign-in opens the vault')
})
