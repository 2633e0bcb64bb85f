/**
 * `moatless sessions list|revoke` run as a user runs them (the built CLI in a child process)
 * against a private redis-server; the test puts sessions into the same store directly and
 * watches the `session-revoked` events that make every replica forget them.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RedisStore, type SessionRecord, type StoreEvent } from '../../src/store/index.js'
import { freePort } from '../helpers/ports.js'
import { cliStoreFixture, CONFIG_HEAD, runCli, until, type CliRun } from '../helpers/cli.js'


// Every check here starts the CLI (a few dozen Node processes), which takes seconds each on a
// loaded machine: more than the suite's default per-file timeout.
t.setTimeout(180_000)

const { dir, redis, stores } = await cliStoreFixture(t, 'sessions')

const run = (...args: string[]): Promise<CliRun> => runCli(args)

const head = `${CONFIG_HEAD}apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    rules: [{ name: staff, allow: { domains: [example.com] } }]
`

const HOUR = 3_600_000
const created = Date.parse('2030-01-02T03:04:05.000Z')

function session (id: string, sub: string, email: string | undefined, groups: string[], offset: number): SessionRecord {
  // Far in the future, so that the store keeps them for the whole test.
  const at = Date.now() + offset
  return {
    id, sub, email, email_verified: true, groups, claims: { sub, email }, tokens: 'sealed-tokens-never-shown',
    created_at: created + offset, last_seen: at, refreshed_at: at, expires_at: at + 12 * HOUR
  }
}

let n = 0
async function setup (): Promise<{ file: string; store: RedisStore; events: StoreEvent[]; ids: { alice1: string; alice2: string; bob: string; svc: string } }> {
  const prefix = `sessions${n++}:`
  const file = join(dir, `${prefix.slice(0, -1)}.yaml`)
  writeFileSync(file, `${head}store:\n  redis: ${redis.url}\n  key_prefix: "${prefix}"\n`)
  const store = new RedisStore({ redis: redis.url, key_prefix: prefix, store_outage_grace: 30_000 })
  stores.push(store)
  if (!await store.connect()) throw new Error('test store did not connect')
  const ids = {
    alice1: 'a1-' + 'A'.repeat(40),
    alice2: 'a2-' + 'B'.repeat(40),
    bob: 'b1-' + 'C'.repeat(40),
    svc: 'c1-' + 'D'.repeat(40)
  }
  await store.putSession(session(ids.alice1, 'alice-sub', 'alice@example.com', ['engineering', 'staff'], 0), 2 * HOUR)
  await store.putSession(session(ids.alice2, 'alice-sub', 'alice@example.com', ['engineering', 'staff'], 1000), 2 * HOUR)
  await store.putSession(session(ids.bob, 'bob-sub', 'bob@example.com', [], 2000), 2 * HOUR)
  await store.putSession(session(ids.svc, 'service-account', undefined, ['robots'], 3000), 2 * HOUR)
  const events: StoreEvent[] = []
  store.onEvent((e) => events.push(e))
  await new Promise((resolve) => setTimeout(resolve, 100)) // the subscription is in place
  return { file, store, events, ids }
}

t.test('list: one session per line, the full id first', async (t) => {
  const { file, ids } = await setup()
  const [all, alice, bySub, json] = await Promise.all([
    run('sessions', 'list', '--config', file),
    run('sessions', 'list', '--config', file, '--user', 'Alice@Example.com'),
    run('sessions', 'list', '--config', file, '--user', 'bob-sub'),
    run('sessions', 'list', '--config', file, '--json')
  ])
  t.equal(all.code, 0, all.err)
  const lines = all.out.trim().split('\n')
  t.equal(lines.length, 4)
  t.match(lines[0], new RegExp(`^${ids.alice1} alice@example\\.com alice-sub engineering,staff 2030-01-02T03:04:05\\.000Z \\S+Z \\S+Z$`))
  t.match(lines[2], new RegExp(`^${ids.bob} bob@example\\.com bob-sub - `), 'no groups: -')
  t.match(lines[3], new RegExp(`^${ids.svc} - service-account robots `), 'no email: -')
  t.notMatch(all.out, /sealed-tokens/)

  t.same(alice.out.trim().split('\n').map((l) => l.split(' ')[0]), [ids.alice1, ids.alice2], 'by email, case-insensitive')
  t.same(bySub.out.trim().split('\n').map((l) => l.split(' ')[0]), [ids.bob], 'by sub')

  const doc = JSON.parse(json.out) as { sessions: Record<string, unknown>[] }
  t.equal(doc.sessions.length, 4)
  t.match(doc.sessions[0], { id: ids.alice1, email: 'alice@example.com', sub: 'alice-sub', groups: ['engineering', 'staff'], created_at: '2030-01-02T03:04:05.000Z' })
  t.notMatch(json.out, /sealed-tokens/, 'never the (sealed) tokens')
})

t.test('revoke --user: deletes every session of the user and tells every replica', async (t) => {
  const { file, store, events, ids } = await setup()
  const r = await run('sessions', 'revoke', '--config', file, '--user', 'alice@example.com')
  t.equal(r.code, 0, r.err)
  t.equal(r.out, 'revoked 2 sessions\n')
  t.equal(await store.getSession(ids.alice1), null)
  t.equal(await store.getSession(ids.alice2), null)
  t.not(await store.getSession(ids.bob), null, 'other users keep theirs')
  t.ok(await until(() => events.some((e) => e.type === 'session-revoked')), 'session-revoked published')
  const revoked = events.find((e) => e.type === 'session-revoked') as { ids: string[] }
  t.same([...revoked.ids].sort(), [ids.alice1, ids.alice2].sort())

  const none = await run('sessions', 'revoke', '--config', file, '--user', 'nobody@example.com', '--json')
  t.equal(none.code, 0, none.err)
  t.same(JSON.parse(none.out), { revoked: 0, ids: [] })
  const text = await run('sessions', 'revoke', '--config', file, '--user', 'alice@example.com')
  t.equal(text.out, 'revoked 0 sessions\n')
})

t.test('revoke --id: one session; an unknown id is an error', async (t) => {
  const { file, store, events, ids } = await setup()
  const r = await run('sessions', 'revoke', '--config', file, '--id', ids.bob)
  t.equal(r.code, 0, r.err)
  t.equal(r.out, 'revoked 1 session\n')
  t.equal(await store.getSession(ids.bob), null)
  t.not(await store.getSession(ids.alice1), null)
  t.ok(await until(() => events.some((e) => e.type === 'session-revoked' && e.ids.length === 1 && e.ids[0] === ids.bob)), 'session-revoked published')
  t.same((await store.listSessions({ user: 'bob@example.com' })), [], 'gone from the user index too')

  const events0 = events.length
  const again = await run('sessions', 'revoke', '--config', file, '--id', ids.bob)
  t.equal(again.code, 1)
  t.match(again.err, `no session with id ${ids.bob}`)
  t.equal(again.out, '')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(events.length, events0, 'nothing published')

  const [both, neither] = await Promise.all([
    run('sessions', 'revoke', '--config', file, '--id', ids.svc, '--user', 'alice@example.com'),
    run('sessions', 'revoke', '--config', file)
  ])
  for (const x of [both, neither]) {
    t.equal(x.code, 1)
    t.match(x.err, /exactly one of --user EMAIL or --id ID/)
  }
  t.not(await store.getSession(ids.svc), null)
})

t.test('a memory-store config: exit 1, it needs store.redis', async (t) => {
  const file = join(dir, 'memory.yaml')
  writeFileSync(file, head)
  const runs = await Promise.all([
    run('sessions', 'list', '--config', file),
    run('sessions', 'revoke', '--config', file, '--user', 'alice@example.com')
  ])
  for (const r of runs) {
    t.equal(r.code, 1)
    t.match(r.err, /memory\.yaml has no store\.redis; this command needs store\.redis/)
    t.equal(r.out, '')
  }
})

t.test('an unreachable store: exit 1 quickly with a clear message', async (t) => {
  const port = await freePort()
  const file = join(dir, 'unreachable.yaml')
  writeFileSync(file, `${head}store:\n  redis: redis://127.0.0.1:${port}/0\n`)
  const r = await run('sessions', 'list', '--config', file)
  t.equal(r.code, 1)
  t.match(r.err, new RegExp(`moatless sessions list: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/0 .*within 3 s`))
  // A generous bound: the point is that it gives up by itself (3 s connect timeout) instead of hanging.
  t.ok(r.ms < 20_000, `gave up after ${r.ms} ms`)
})
