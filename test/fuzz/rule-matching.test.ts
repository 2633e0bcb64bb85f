/**
 * Property: no decision is made on a path other than the one forwarded. Random request targets
 * go byte-exact through a live stack; for every request the upstream received, the path it saw
 * is the path of that request's decision log line (matched by X-Request-Id), no deny rule matches
 * it, and no lenient upstream would read it as a denied path. Requests that were not forwarded
 * got an answer, never a 500.
 */
import fc from 'fast-check'
import t from 'tap'
import { compileGlob } from '../../src/authz/glob.js'
import { Browser } from '../helpers/browser.js'
import { rawRequest } from '../helpers/raw.js'
import { startStack, browserSignIn } from '../helpers/stack.js'
import type { Seen } from '../helpers/upstream.js'

const DENIED = ['/admin/**', '/api/*/internal/**', '/secret.txt']
const stack = await startStack({
  apps: {
    wiki: {
      public_paths: ['/public/**', '/static/*.css'],
      rules: [
        { name: 'denied', deny: { paths: DENIED } },
        { name: 'staff', allow: { domains: ['example.com'] } }
      ]
    }
  }
})
t.teardown(() => stack.close())
const alice = new Browser()
await browserSignIn(alice, stack, `${stack.origin('wiki')}/`, 'alice')
const cookie = alice.cookieHeader(stack.origin('wiki'))
const host = `wiki.localhost:${stack.port}`
const deny = DENIED.map((g) => {
  const c = compileGlob(g)
  if ('error' in c) throw new Error(c.error)
  return c
})

const plain = fc.constantFrom('admin', 'api', 'v1', 'internal', 'public', 'static', 'x.css', 'secret.txt', 'a', 'b', 'index.html', '...', '%61dmin',
  '%61%64%6d%69%6e', 'ADMIN', 'Admin', '%41dmin', 'admin%20', '%ef%bd%81dmin', 'a"b', 'a<b>', '{x}', 'a|b', '~', '%7e', '*', '**', 'admin%23', '%25')
const tricky = fc.constantFrom('%3b', 'admin%3b', '', '.', '..', '%2e', '%2e%2e', '.%2e', '%2E%2E', '%252e%252e', '..;', 'admin;x=1', ';', 'admin%2f', '%2fadmin', 'admin%5c',
  'a\\b', 'a b', 'admin%00', '%c0%ae%c0%ae', '%ef%bc%8e%ef%bc%8e', 'admin%ef%bc%8f', 'admin#', '?', 'a?b', '%zz')
const segment = fc.oneof({ weight: 8, arbitrary: plain }, { weight: 1, arbitrary: tricky })
const target = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/'))

/** Path as a lenient upstream reads it: decoded once, `\` as `/`, parameters stripped, dots resolved. */
function lenient (url: string): string {
  let p = url.split('?')[0] as string
  try { p = decodeURIComponent(p) } catch { /* as is */ }
  const out: string[] = []
  for (const raw of p.replace(/\\/g, '/').split('/')) {
    const seg = raw.split(';')[0] as string
    if (seg === '..') out.pop()
    else if (seg !== '.' && seg !== '') out.push(seg)
  }
  return '/' + out.join('/')
}

async function decisionLine (requestId: unknown): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 50; i++) {
    const line = stack.logs.find((l) => l.msg === 'decision' && l.request_id === requestId)
    if (line !== undefined) return line
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return undefined
}

const RUNS = 250

t.test('the upstream only ever receives the path that was decided on, and never a denied one', async (t) => {
  let forwarded = 0
  let refused = 0
  await fc.assert(fc.asyncProperty(target, fc.boolean(), async (path, signedIn) => {
    const before = stack.upstream.requests.length
    const res = await rawRequest(stack.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${signedIn ? `Cookie: ${cookie}\r\n` : ''}Accept: application/json\r\nConnection: close\r\n\r\n`)
    if (res.status === 500 || res.status === 0) return false
    const seen: Seen[] = stack.upstream.requests.slice(before)
    if (seen.length === 0) {
      refused++
      return res.status >= 400 && res.status < 500
    }
    if (seen.length !== 1 || res.status !== 200) return false
    forwarded++
    const upstreamPath = (seen[0] as Seen).url.split('?')[0] as string
    const line = await decisionLine((seen[0] as Seen).headers['x-request-id'])
    if (line?.path !== upstreamPath) return false
    if (deny.some((g) => g.matches(upstreamPath))) return false
    const read = lenient(upstreamPath)
    return !deny.some((g) => g.matches(read))
  }), { numRuns: RUNS })
  t.ok(forwarded > 20, `a fair share was forwarded (${forwarded}) and checked`)
  t.ok(refused > 20, `and a fair share refused (${refused})`)
})
