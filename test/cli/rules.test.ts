/**
 * `moatless rules ...` run as a user runs it (the built CLI in a child process) against a
 * private redis-server; the test reads and writes the same store directly to set things up
 * and to see what the commands did.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RedisStore, type StoreEvent } from '../../src/store/index.js'
import type { DecisionSample } from '../../src/rules/ruleset.js'
import { freePort } from '../helpers/ports.js'
import { cliStoreFixture, CONFIG_HEAD, runCli, until, type CliRun } from '../helpers/cli.js'


// Every check here starts the CLI (a few dozen Node processes), which takes seconds each on a
// loaded machine: more than the suite's default per-file timeout.
t.setTimeout(300_000)

const { dir, redis, stores } = await cliStoreFixture(t, 'rules')

const run = (...args: string[]): Promise<CliRun> => runCli(args)

const head = `${CONFIG_HEAD}device_trust:
  levels:
    - name: known
      require: { enrolled: true }
    - name: managed
      require: { managed: true, disk_encrypted: true }
`

/** Rules A: staff may read and post. */
const appsA = `apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    public_paths: ["/healthz"]
    rules:
      - name: no-contractors-in-admin
        deny: { groups: [contractors], paths: ["/admin/**"] }
      - name: engineers-on-managed-devices
        allow: { groups: [engineering], device: { trust: managed } }
      - name: staff-can-use
        allow: { domains: [example.com], methods: [GET, HEAD, POST] }
  - name: ci
    from: http://ci.localhost:8080
    to: http://127.0.0.1:9002
    rules:
      - name: builders
        allow: { groups: [builders], claims: { note: "literal $\${NOT_A_VAR}" } }
`

/** Rules B: staff may only read, ops may do everything, and the ci app is gone. */
const appsB = `apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    public_paths: ["/healthz"]
    rules:
      - name: no-contractors-in-admin
        deny: { groups: [contractors], paths: ["/admin/**"] }
      - name: engineers-on-managed-devices
        allow: { groups: [engineering], device: { trust: managed } }
      - name: staff-can-read
        allow: { domains: [example.com], methods: [GET, HEAD] }
      - name: ops-everything
        allow: { groups: [ops] }
`

let n = 0
/** A config file on its own key prefix in the shared redis-server, and a store client on it. */
async function setup (apps = appsA): Promise<{ file: string; store: RedisStore; prefix: string; write: (name: string, apps: string) => string }> {
  const prefix = `rules${n++}:`
  const write = (name: string, text: string): string => {
    const file = join(dir, `${prefix.slice(0, -1)}-${name}.yaml`)
    writeFileSync(file, `${head}store:\n  redis: ${redis.url}\n  key_prefix: "${prefix}"\n${text}`)
    return file
  }
  const store = new RedisStore({ redis: redis.url, key_prefix: prefix, store_outage_grace: 30_000 })
  stores.push(store)
  if (!await store.connect()) throw new Error('test store did not connect')
  return { file: write('a', apps), store, prefix, write }
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

t.test('apply: makes the set active and tells every replica; the same file again is unchanged', async (t) => {
  const { file, store } = await setup()
  const events: StoreEvent[] = []
  store.onEvent((e) => events.push(e))
  await new Promise((resolve) => setTimeout(resolve, 100)) // the subscription is in place

  const r = await run('rules', 'apply', '--config', file)
  t.equal(r.code, 0, r.err)
  const m = /^applied ([0-9a-f]{16}) \(2 apps, 4 rules\)\n$/.exec(r.out)
  t.ok(m, r.out)
  const version = m?.[1] as string
  t.equal(await store.activeRuleSetVersion(), version)
  t.ok(await until(() => events.some((e) => e.type === 'rules-changed' && e.version === version)), 'rules-changed published')

  const again = await run('rules', 'apply', '--config', file)
  t.equal(again.code, 0, again.err)
  t.equal(again.out, `unchanged ${version}\n`)
  t.equal((await store.ruleSetHistory()).length, 1, 'nothing activated the second time')

  const json = await run('rules', 'apply', '--config', file, '--json')
  t.same(JSON.parse(json.out), { result: 'unchanged', version, apps: 2, rules: 4 })
})

t.test('apply: invalid rules are reported like check (FILE:LINE:COL) and nothing is written', async (t) => {
  const { store, write } = await setup()
  const bad = write('bad', appsA.replace('trust: managed', 'trust: trusted'))
  const r = await run('rules', 'apply', '--config', bad)
  t.equal(r.code, 1)
  t.equal(r.out, '')
  t.match(r.err, new RegExp(`^${escape(bad)}:27:58 .*unknown device trust level "trusted"`))
  const check = await run('check', '--config', bad)
  t.equal(r.err, check.err, 'exactly the lines check prints')
  t.equal(await store.activeRuleSetVersion(), null)
  t.same(await store.ruleSetHistory(), [])

  // Errors of the rules compiler (after the schema passed) too.
  const glob = write('glob', appsA.replace('paths: ["/admin/**"]', 'paths: ["admin/**"]'))
  const g = await run('rules', 'apply', '--config', glob)
  t.equal(g.code, 1)
  t.match(g.err, new RegExp(`^${escape(glob)}:25:48 invalid glob "admin/\\*\\*"`))
  t.equal(await store.activeRuleSetVersion(), null)
})

t.test('export: the active set as YAML that applies back unchanged', async (t) => {
  const { file, store, write } = await setup()
  const applied = await run('rules', 'apply', '--config', file)
  const version = /applied (\w+)/.exec(applied.out)?.[1] as string

  const r = await run('rules', 'export', '--config', file)
  t.equal(r.code, 0, r.err)
  const [comment, ...rest] = r.out.split('\n')
  t.match(comment, new RegExp(`^# version ${version}, applied \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z from ${escape(file)}`))
  t.match(rest.join('\n'), /^apps:\n {2}- name: wiki\n/)
  t.match(r.out, 'literal $${NOT_A_VAR}', 'a literal ${ is written escaped, so loading it again does not substitute')

  const back = write('exported', r.out)
  const again = await run('rules', 'apply', '--config', back)
  t.equal(again.code, 0, again.err)
  t.equal(again.out, `unchanged ${version}\n`)
  t.equal(await store.activeRuleSetVersion(), version)

  const json = await run('rules', 'export', '--config', file, '--json')
  const doc = JSON.parse(json.out) as { version: string; apps: { name: string; rules: { allow?: { claims?: unknown } }[] }[] }
  t.equal(doc.version, version)
  t.same(doc.apps.map((a) => a.name), ['wiki', 'ci'])
  t.same(doc.apps[1]?.rules[0]?.allow?.claims, { note: 'literal ${NOT_A_VAR}' }, 'stored after substitution')
})

t.test('export without an active set: exit 1', async (t) => {
  const { file } = await setup()
  const r = await run('rules', 'export', '--config', file)
  t.equal(r.code, 1)
  t.match(r.err, /no active rule set/)
})

t.test('history and rollback', async (t) => {
  const { file, store, write, prefix } = await setup()
  const fileB = write('b', appsB)
  const a = /applied (\w+)/.exec((await run('rules', 'apply', '--config', file)).out)?.[1] as string
  const b = /applied (\w+) \(1 app, 4 rules\)/.exec((await run('rules', 'apply', '--config', fileB)).out)?.[1] as string
  t.ok(a !== undefined && b !== undefined && a !== b)

  const h = await run('rules', 'history', '--config', file)
  t.equal(h.code, 0, h.err)
  const lines = h.out.trim().split('\n')
  t.equal(lines.length, 2)
  t.match(lines[0], new RegExp(`^${b} \\S+Z active 1 app, 4 rules from ${escape(fileB)}`))
  t.match(lines[1], new RegExp(`^${a} \\S+Z 2 apps, 4 rules from `))
  t.notMatch(lines[1], / active /)

  const rb = await run('rules', 'rollback', '--config', file)
  t.equal(rb.code, 0, rb.err)
  t.equal(rb.out, `rolled back to ${a}\n`)
  t.equal(await store.activeRuleSetVersion(), a)

  const hj = JSON.parse((await run('rules', 'history', '--config', file, '--json')).out) as { active: string; history: { version: string; active: boolean; activated_at: string }[] }
  t.equal(hj.active, a)
  t.same(hj.history.map((e) => [e.version, e.active]), [[a, true], [b, false], [a, false]])

  const to = await run('rules', 'rollback', '--config', file, '--to', b.slice(0, 6))
  t.equal(to.out, `rolled back to ${b}\n`, 'a unique prefix is enough')
  t.equal(await store.activeRuleSetVersion(), b)

  const same = await run('rules', 'rollback', '--config', file, '--to', b)
  t.equal(same.code, 0)
  t.match(same.out, `unchanged ${b}`)

  const unknown = await run('rules', 'rollback', '--config', file, '--to', 'ffffffffffffffff')
  t.equal(unknown.code, 1)
  t.match(unknown.err, /ffffffffffffffff is not stored/)
  t.equal(await store.activeRuleSetVersion(), b)

  // A set that no longer compiles with the config's device trust levels is refused.
  const noLevels = join(dir, `${prefix.slice(0, -1)}-no-levels.yaml`)
  writeFileSync(noLevels, `${head.slice(0, head.indexOf('device_trust:'))}store:\n  redis: ${redis.url}\n  key_prefix: "${prefix}"\n` +
    'apps: [{ name: wiki, from: "http://wiki.localhost:8080", to: "http://127.0.0.1:9001" }]\n')
  const refused = await run('rules', 'rollback', '--config', noLevels, '--to', a)
  t.equal(refused.code, 1)
  t.match(refused.err, /no longer compiles[\s\S]*unknown device trust level "managed"/)
  t.equal(await store.activeRuleSetVersion(), b)
})

function sample (s: Partial<DecisionSample> & Pick<DecisionSample, 't' | 'decision' | 'rule'>): string {
  return JSON.stringify({
    replica: 'r1', app: 'wiki', method: 'GET', path: '/', source_ip: '203.0.113.9', identity: null,
    device: { id: null, trust: 'none', trustRank: 0 }, ...s
  })
}

const user = (email: string, groups: string[] = []): DecisionSample['identity'] =>
  ({ sub: `sub-${email}`, email, email_verified: true, groups, claims: {}, via: 'session' })

t.test('apply --dry-run replays recent decisions and writes nothing', async (t) => {
  const { file, store, write } = await setup()
  const a = /applied (\w+)/.exec((await run('rules', 'apply', '--config', file)).out)?.[1] as string
  const fileB = write('b', appsB)
  const t0 = Date.parse('2030-01-02T03:04:05.000Z')
  await store.addDecisionSamples([
    // allow → deny: POST is no longer for staff
    sample({ t: t0, method: 'POST', path: '/edit', identity: user('alice@example.com'), decision: 'allow', rule: 'staff-can-use' }),
    // unchanged
    sample({ t: t0 + 1000, identity: user('alice@example.com'), decision: 'allow', rule: 'staff-can-use' }),
    sample({ t: t0 + 2000, identity: user('mallory@other.org'), decision: 'deny', rule: 'default-deny' }),
    sample({ t: t0 + 3000, path: '/healthz', decision: 'allow', rule: 'public-path' }),
    // deny → allow: the new ops rule
    sample({ t: t0 + 4000, method: 'DELETE', path: '/page', identity: user('olga@other.org', ['ops']), decision: 'deny', rule: 'default-deny' }),
    // allow → 404: the ci app is gone
    sample({ t: t0 + 5000, app: 'ci', identity: user('bob@example.com', ['builders']), decision: 'allow', rule: 'builders' }),
    'not json'
  ])

  const r = await run('rules', 'apply', '--config', fileB, '--dry-run')
  t.equal(r.code, 0, r.err)
  const lines = r.out.trim().split('\n')
  const b = /^dry run: would apply (\w+) \(1 app, 4 rules\) over (\w+); nothing written$/.exec(lines[0] as string)
  t.ok(b, String(lines[0]))
  t.equal(b?.[2], a)
  t.same(lines.slice(1), [
    '2030-01-02T03:04:05.000Z wiki POST /edit alice@example.com allow (staff-can-use) → deny (default-deny)',
    '2030-01-02T03:04:09.000Z wiki DELETE /page olga@other.org deny (default-deny) → allow (ops-everything)',
    '2030-01-02T03:04:10.000Z ci GET / bob@example.com allow (builders) → not-found (unknown-host)',
    '6 decisions replayed, 3 would change (2 allow→deny, 1 deny→allow)'
  ])
  t.equal(await store.activeRuleSetVersion(), a, 'still the old set')
  t.equal(await store.getRuleSet(b?.[1] as string), null, 'the new set was not even stored')
  t.equal((await store.ruleSetHistory()).length, 1)

  // The 3 newest samples: the broken one is skipped.
  const json = await run('rules', 'apply', '--config', fileB, '--dry-run', '--json', '--samples', '3')
  const doc = JSON.parse(json.out) as Record<string, unknown> & { changes: { path: string; kind: string; new: { decision: string } }[] }
  t.match(doc, { dry_run: true, version: b?.[1], active: a, result: 'would-apply', replayed: 2, would_change: 2, allow_to_deny: 1, deny_to_allow: 1 })
  t.same(doc.changes.map((c) => [c.path, c.kind, c.new.decision]), [['/page', 'deny→allow', 'allow'], ['/', 'allow→deny', 'not-found']])

  const bad = await run('rules', 'apply', '--config', fileB, '--dry-run', '--samples', '0')
  t.equal(bad.code, 1)
  t.match(bad.err, /--samples/)
})

t.test('explain: no store needed; text and JSON', async (t) => {
  // The memory store: explain works from the file alone.
  const file = join(dir, 'explain.yaml')
  writeFileSync(file, head + appsA)
  const explain = (...args: string[]): Promise<CliRun> => run('rules', 'explain', '--config', file, ...args)
  const wiki = 'http://wiki.localhost:8080'
  // Independent runs, started together: each is a process start-up.
  const [allow, managed, denied, deniedJson, contractor, dots, encoded, nohost, authOrigin, anonymous, anonymousPrivate, claims, level, url] = await Promise.all([
    explain('--user', 'alice@example.com', '--url', `${wiki}/docs`),
    explain('--user', 'eve@other.org', '--groups', 'engineering', '--device-trust', 'managed', '--device-id', 'laptop-1', '--method', 'delete', '--url', `${wiki}/x`, '--json'),
    explain('--user', 'eve@other.org', '--groups', 'engineering', '--device-trust', 'known', '--email-verified', 'false', '--url', `${wiki}/x`),
    explain('--user', 'eve@other.org', '--url', `${wiki}/x`, '--json'),
    explain('--user', 'c@example.com', '--groups', 'contractors', '--url', `${wiki}/%61dmin/users`),
    explain('--user', 'alice@example.com', '--url', `${wiki}/docs/../admin`),
    explain('--user', 'a@example.com', '--url', `${wiki}/a%2Fb`, '--json'),
    explain('--user', 'alice@example.com', '--url', 'https://nope.example.com/'),
    explain('--user', 'alice@example.com', '--url', 'http://auth.localhost:8080/x', '--json'),
    explain('--url', `${wiki}/healthz`),
    explain('--url', `${wiki}/docs`),
    explain('--user', 'b@x.org', '--groups', 'builders', '--claims', 'note=literal ${NOT_A_VAR}', '--url', 'http://ci.localhost:8080/', '--json'),
    explain('--user', 'a@example.com', '--device-trust', 'high', '--url', `${wiki}/`),
    explain('--user', 'a@example.com', '--url', 'wiki.localhost/x')
  ])

  t.equal(allow.code, 0, allow.err)
  t.match(allow.out, /^decision: allow \(200, forwarded upstream\) by rule staff-can-use\n/)
  t.match(allow.out, /request: {2}GET \/docs on app wiki \(http:\/\/wiki\.localhost:8080\) from 203\.0\.113\.9\n/)
  t.match(allow.out, / {2}allow staff-can-use: matched {2}← decided\n/)

  t.match(JSON.parse(managed.out), { status: 200, decision: 'allow', rule: 'engineers-on-managed-devices', method: 'DELETE', device: { id: 'laptop-1', trust: 'managed', rank: 2 } })

  t.equal(denied.code, 0, denied.err)
  t.match(denied.out, /^decision: deny \(403, forbidden\) by rule default-deny\n/)
  t.match(denied.out, /reasons:\n {2}engineers-on-managed-devices: device-unauthorized: needs a device at level managed; this device is known\n/)
  t.match(denied.out, / {2}allow staff-can-use: not matched\n {8}domain-unauthorized: /)

  const dj = JSON.parse(deniedJson.out) as {
    status: number; decision: string; rule: string; reasons: string[]; rules: { rule: string; effect: string; matched: boolean; unmet: string[] }[]
  }
  t.equal(dj.status, 403)
  t.equal(dj.rule, 'default-deny')
  t.ok(dj.reasons.length > 0)
  t.same(dj.rules.map((r) => [r.rule, r.effect, r.matched]), [
    ['no-contractors-in-admin', 'deny', false], ['engineers-on-managed-devices', 'allow', false], ['staff-can-use', 'allow', false]
  ])
  t.match(dj.rules[1]?.unmet, [/^groups-unauthorized: /, /^device-unauthenticated: /])

  t.match(contractor.out, /^decision: deny \(403, forbidden\) by rule no-contractors-in-admin\n/, '/%61dmin is /admin, as in the proxy')
  t.match(contractor.out, /GET \/admin\/users on app wiki/)

  t.equal(dots.code, 0)
  t.match(dots.out, /^decision: 400 bad request \(dot-segment\): /, 'the path as typed, not as new URL() resolves it')
  t.match(JSON.parse(encoded.out), { status: 400, decision: 'bad-request', reason: 'encoded-separator' })

  t.match(nohost.out, /^decision: 404 not found: no app is configured for host nope\.example\.com/)
  t.match(JSON.parse(authOrigin.out), { status: 404, decision: 'not-found' })

  t.match(anonymous.out, /^decision: allow \(200, forwarded upstream\) by rule public-path\n/)
  t.match(anonymousPrivate.out, /^decision: unauthenticated /)
  t.match(JSON.parse(claims.out), { decision: 'allow', rule: 'builders' })

  t.equal(level.code, 1)
  t.match(level.err, /--device-trust must be none or a configured level \(none, known, managed\)/)
  t.equal(url.code, 1)
  t.match(url.err, /--url must be an absolute http\(s\) URL/)
})

t.test('a memory-store config: commands that need the store say so', async (t) => {
  const file = join(dir, 'memory.yaml')
  writeFileSync(file, head + appsA)
  const commands = [['apply'], ['apply', '--dry-run'], ['export'], ['rollback'], ['history']]
  const runs = await Promise.all(commands.map((cmd) => run('rules', ...cmd, '--config', file)))
  runs.forEach((r, i) => {
    const name = String(commands[i]?.join(' '))
    t.equal(r.code, 1, name)
    t.match(r.err, /needs store\.redis/, name)
    t.equal(r.out, '')
  })
})

t.test('an unreachable store: exit 1 quickly with a clear message', async (t) => {
  const port = await freePort()
  const file = join(dir, 'unreachable.yaml')
  writeFileSync(file, `${head}store:\n  redis: redis://:hunter2@127.0.0.1:${port}/0\n${appsA}`)
  const r = await run('rules', 'apply', '--config', file)
  t.equal(r.code, 1)
  t.match(r.err, new RegExp(`cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0 .*within 3 s`))
  t.notMatch(r.err, /hunter2/, 'no password in messages')
  // A generous bound: the point is that it gives up by itself (3 s connect timeout) instead of hanging.
  t.ok(r.ms < 20_000, `gave up after ${r.ms} ms`)
})
