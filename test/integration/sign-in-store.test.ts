/**
 * What a sign-in asks of Redis (issue 6: sign-in server time). Watched with MONITOR on a private
 * redis-server: the callback takes the login transaction, then writes the new session and its
 * handoff code (sent side by side: src/authn/routes.ts), and the replica that created the
 * session never reads it back (neither the handoff nor the first page of the app). A session
 * that cannot be saved is a 503 with no cookie and no handoff.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Browser } from '../helpers/browser.js'
import { startRedis } from '../helpers/redis.js'
import { signInAtIdp } from '../helpers/idp-login.js'
import { browserSignIn, HTML, startStack } from '../helpers/stack.js'

const redis = await startRedis()
const stack = await startStack({
  redisUrl: redis.url,
  apps: { wiki: { rules: [{ name: 'staff', allow: { domains: ['example.com'] } }] } }
})
t.teardown(async () => { await stack.close(); await redis.close() })

interface Seen { at: number; args: string[] }

async function watch (): Promise<{ seen: Seen[]; stop: () => Promise<void> }> {
  const client = new Redis(redis.url)
  const monitor = await client.monitor()
  const seen: Seen[] = []
  monitor.on('monitor', (_time: string, args: string[]) => { seen.push({ at: seen.length, args }) })
  return { seen, stop: async () => { monitor.disconnect(); client.disconnect() } }
}

t.test('the callback writes the session and its handoff code; the replica never reads the session back', async (t) => {
  const m = await watch()
  const browser = new Browser()
  const { final, chain } = await browserSignIn(browser, stack, `${stack.origin('wiki')}/docs/`, 'alice')
  t.equal(final.status, 200, `signed in: ${chain.join(' → ')}`)
  // MONITOR lines arrive asynchronously: wait until the handoff's GETDEL is in.
  for (let i = 0; i < 100 && !m.seen.some((s) => s.args[0]?.toLowerCase() === 'getdel' && s.args[1]?.includes('handoff')); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  await m.stop()

  const cmd = (s: Seen): string => s.args[0]?.toLowerCase() ?? ''
  const key = (s: Seen): string => s.args[1] ?? ''
  const sessionSet = m.seen.find((s) => cmd(s) === 'set' && key(s).includes(':session:'))
  const handoffSet = m.seen.find((s) => cmd(s) === 'set' && key(s).includes('handoff'))
  const loginTake = m.seen.find((s) => cmd(s) === 'getdel' && key(s).includes('login'))
  const handoffTake = m.seen.find((s) => cmd(s) === 'getdel' && key(s).includes('handoff'))
  t.ok(loginTake !== undefined && sessionSet !== undefined && handoffSet !== undefined && handoffTake !== undefined,
    `the sign-in's store commands: ${m.seen.map((s) => `${cmd(s)} ${key(s)}`).join(', ')}`)
  if (loginTake === undefined || sessionSet === undefined || handoffSet === undefined || handoffTake === undefined) return

  t.ok(loginTake.at < sessionSet.at, 'the login transaction is taken before the session is written')
  // Side by side: no command of this sign-in's answers lies between the two writes; both
  // were sent before either reply (the session's pipeline: SET + the user index).
  const between = m.seen.slice(Math.min(sessionSet.at, handoffSet.at) + 1, Math.max(sessionSet.at, handoffSet.at))
  t.ok(between.every((s) => ['sadd', 'pexpire'].includes(cmd(s))),
    `only the session pipeline's own commands between the two writes: ${between.map(cmd).join(', ') || 'none'}`)
  t.ok(handoffSet.at < handoffTake.at, 'the handoff code is written before it is redeemed')

  const sessionId = key(sessionSet).split(':session:')[1]
  const reads = m.seen.filter((s) => cmd(s) === 'get' && key(s).endsWith(`:session:${sessionId}`))
  t.same(reads.map((s) => `${cmd(s)} ${key(s)}`), [], 'the replica that created the session never reads it from the store')
})

t.test('a session that cannot be saved: 503, no session cookie, no handoff, no session stored', async (t) => {
  const browser = new Browser()
  // Walk the sign-in up to the IdP's redirect back to the callback, without following it.
  let res = await browser.request(`${stack.origin('wiki')}/`, { headers: HTML })
  let next = res.headers.location as string | undefined
  const idpOrigin = new URL(stack.idp.issuer).origin
  let callback: string | undefined
  for (let i = 0; i < 20 && next !== undefined && callback === undefined; i++) {
    const target = new URL(next, res.url)
    if (target.pathname === '/.moatless/callback') { callback = target.href; break }
    if (target.origin === idpOrigin) {
      const atIdp = await browser.follow(target.href, { headers: HTML }, 20, { stopBefore: (u: URL) => u.origin !== idpOrigin })
      next = (await signInAtIdp(browser, atIdp.final.url, 'bob', 'bob-password')).url
      continue
    }
    res = await browser.request(target.href, { headers: HTML })
    next = res.headers.location as string | undefined
  }
  t.ok(callback, 'reached the callback')
  if (callback === undefined) return

  // The store still answers, but refuses SET: the login transaction can be taken (GETDEL),
  // the session and the handoff code cannot be written.
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const sessionsBefore = (await admin.keys('*:session:*')).sort()
  await admin.call('ACL', 'SETUSER', 'default', '-set')
  let answer
  try {
    answer = await browser.request(callback, { headers: HTML })
  } finally {
    await admin.call('ACL', 'SETUSER', 'default', '+set')
  }
  t.equal(answer.status, 503, 'refused: the session store is unavailable')
  t.match(answer.body, /session store is unavailable/)
  t.notOk(String(answer.headers['set-cookie'] ?? '').includes('session'), 'no session cookie')
  t.equal(answer.headers.location, undefined, 'no handoff redirect')
  t.same((await admin.keys('*:session:*')).sort(), sessionsBefore, 'no session was stored')
})
