/**
 * npm run bench: the whole chain against bare forwarding against direct, on one local origin.
 *
 * Targets (same upstream, 1 KiB body): the upstream directly; fastify + @fastify/http-proxy
 * with no auth; Moatless on the Redis store with a signed-in session cookie; Moatless with a
 * bearer token (an IdP ID token). Rounds interleave the targets so machine drift hits all
 * alike. The proxies run pinned to CPU 0, the upstream and the load generator to CPU 1.
 * Results: benchmarks/results/latest.{json,md}.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import * as client from 'openid-client'
import { request } from 'undici'
import { Sealer } from '../src/authn/seal.js'
import { startIdp } from '../src/demo/idp.js'
import { RedisStore } from '../src/store/index.js'
import { Browser } from '../test/helpers/browser.js'
import { signInAtIdp } from '../test/helpers/idp-login.js'
import { freePort } from '../test/helpers/ports.js'
import { startRedis } from '../test/helpers/redis.js'
import { decisionMicrobench } from './decision.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const CLIENT_SECRET = 'bench-client-secret-0123456789abcdef'
const SESSION_SECRET = 'bench-session-secret-0123456789abcdef-0123456789'

const hasTaskset = (() => { try { execFileSync('taskset', ['-c', '0', 'true']); return cpus().length >= 2 } catch { return false } })()
const pin = (cpu: number, cmd: string[]): string[] => hasTaskset ? ['taskset', '-c', String(cpu), ...cmd] : cmd

const children: ChildProcess[] = []
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

function start (cpu: number, script: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = pin(cpu, [process.execPath, script])
    const child = spawn(cmd as string, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.push(child)
    child.once('message', (m: { port: number }) => resolve(m.port))
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)))
  })
}

async function startMoatless (port: number, config: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'moatless-bench-'))
  const file = join(dir, 'moatless.yaml')
  writeFileSync(file, config)
  const [cmd, ...args] = pin(0, [process.execPath, 'bin/moatless.js', 'serve', '--config', file])
  const child = spawn(cmd as string, args, {
    env: { ...process.env, MOATLESS_CLIENT_SECRET: CLIENT_SECRET, MOATLESS_SESSION_SECRET: SESSION_SECRET, MOATLESS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  children.push(child)
  for (let i = 0; i < 100; i++) {
    try { await fetch(`http://127.0.0.1:${port}/`); return } catch { await new Promise((resolve) => setTimeout(resolve, 100)) }
  }
  throw new Error('moatless did not start')
}

interface Target { name: string; url: string; headers: Record<string, string> }
interface Run { rps: number; p50: number; p99: number; non2xx: number; errors: number; timeouts: number }

function load (target: Target, seconds: number): Run {
  const opts = { url: target.url, headers: target.headers, connections: CONNECTIONS, duration: seconds, pipelining: 1 }
  const [cmd, ...args] = pin(1, [process.execPath, 'benchmarks/load.mjs', JSON.stringify(opts)])
  return JSON.parse(execFileSync(cmd as string, args, { encoding: 'utf8', maxBuffer: 1 << 20 })) as Run
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }

async function main (): Promise<void> {
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version, pinned: hasTaskset }
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, Node ${machine.node}${hasTaskset ? ', proxy on CPU 0, upstream + load on CPU 1' : ', not pinned'}`)

  const redis = await startRedis()
  const upstreamPort = await start(1, 'benchmarks/upstream.mjs', {})
  const upstream = `http://127.0.0.1:${upstreamPort}`
  const barePort = await start(0, 'benchmarks/bare-proxy.mjs', { UPSTREAM: upstream })

  const port = await freePort()
  const authUrl = `http://auth.localhost:${port}`
  const from = `http://wiki.localhost:${port}`
  const idp = await startIdp({ clients: [{ client_id: 'moatless', client_secret: CLIENT_SECRET, redirect_uris: [`${authUrl}/.moatless/callback`, 'http://rp.localhost/cb'] }] })
  await startMoatless(port, `listen: { address: 127.0.0.1, port: ${port} }
admin: { address: 127.0.0.1, port: ${await freePort()} }
authenticate: { url: "${authUrl}" }
idp:
  issuer: "${idp.issuer}"
  client_id: moatless
  client_secret: \${MOATLESS_CLIENT_SECRET}
session:
  secret: \${MOATLESS_SESSION_SECRET}
store:
  redis: "${redis.url}"
  key_prefix: "bench:"
apps:
  - name: wiki
    from: "${from}"
    to: "${upstream}"
    identity_headers: true
    rules:
      - name: no-contractors-in-admin
        deny: { groups: [contractors], paths: ["/admin/**"] }
      - name: staff
        allow: { domains: [example.com] }
`)

  // A signed-in session, made the way the callback makes it.
  const store = new RedisStore({ redis: redis.url, key_prefix: 'bench:', store_outage_grace: 30_000 })
  await store.connect()
  const now = Date.now()
  const sid = 'bench-session-0000000000000000000000000000'
  await store.putSession({ id: sid, sub: 'user-1001', email: 'alice@example.com', email_verified: true, groups: ['engineering'], claims: {}, tokens: '', created_at: now, last_seen: now, expires_at: now + 3_600_000, refreshed_at: now }, 3_600_000)
  const cookie = `moatless_session=${new Sealer(SESSION_SECRET, 'cookie').seal({ s: sid, o: from })}`

  // A real ID token from the IdP, for the bearer target.
  const oidc = await client.discovery(new URL(idp.issuer), 'moatless', CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] })
  const verifier = client.randomPKCECodeVerifier()
  const nonce = client.randomNonce()
  const state = client.randomState()
  const browser = new Browser()
  const authorize = client.buildAuthorizationUrl(oidc, { redirect_uri: 'http://rp.localhost/cb', scope: 'openid email profile', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce })
  const landing = await browser.follow(authorize.href, { headers: { accept: 'text/html' } }, 20, { stopBefore: (u) => u.origin !== new URL(idp.issuer).origin })
  const back = await signInAtIdp(browser, landing.final.url, 'alice', 'alice-password')
  const tokens = await client.authorizationCodeGrant(oidc, new URL(back.url), { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state })
  const idToken = tokens.id_token as string

  const host = `wiki.localhost:${port}`
  const targets: Target[] = [
    { name: 'direct (upstream)', url: `${upstream}/page`, headers: {} },
    { name: 'bare @fastify/http-proxy', url: `http://127.0.0.1:${barePort}/page`, headers: {} },
    { name: 'moatless, session cookie (Redis store)', url: `http://127.0.0.1:${port}/page`, headers: { host, cookie, accept: 'application/json' } },
    { name: 'moatless, bearer token', url: `http://127.0.0.1:${port}/page`, headers: { host, authorization: `Bearer ${idToken}`, accept: 'application/json' } }
  ]

  // Check each target answers 200 before measuring anything.
  for (const t of targets) {
    const r = await request(t.url, { headers: t.headers })
    await r.body.text()
    if (r.statusCode !== 200) throw new Error(`${t.name} answers ${r.statusCode}; fix the setup before measuring`)
  }

  console.log(`warm-up, then ${ROUNDS} rounds x ${SECONDS}s per target, ${CONNECTIONS} connections`)
  for (const t of targets) load(t, 2)
  const runs = new Map<string, Run[]>(targets.map((t) => [t.name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const t of targets) {
      const res = load(t, SECONDS)
      runs.get(t.name)?.push(res)
      console.log(`  round ${r + 1} ${t.name}: ${Math.round(res.rps)} req/s, p50 ${res.p50} ms, p99 ${res.p99} ms${res.non2xx > 0 ? `, ${res.non2xx} non-2xx` : ''}`)
    }
  }

  const summary = targets.map((t) => {
    const rs = runs.get(t.name) ?? []
    return { target: t.name, rps: Math.round(median(rs.map((x) => x.rps))), p50_ms: median(rs.map((x) => x.p50)), p99_ms: median(rs.map((x) => x.p99)), non2xx: rs.reduce((n, x) => n + x.non2xx + x.errors, 0) }
  })
  const direct = summary[0] as typeof summary[number]
  const bare = summary[1] as typeof summary[number]
  const rows = summary.map((s) => ({ ...s, vs_bare: Math.round((s.rps / bare.rps) * 1000) / 1000, vs_direct: Math.round((s.rps / direct.rps) * 1000) / 1000, p99_over_bare_ms: Math.round((s.p99_ms - bare.p99_ms) * 100) / 100 }))

  const micro = await decisionMicrobench()
  const result = { date: new Date().toISOString(), machine, rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, targets: rows, decision: micro }
  const md = [
    `Measured ${result.date} on ${machine.cpu} (${machine.cores} cores, ${machine.memory_gib} GiB), Node ${machine.node}; ${ROUNDS} interleaved rounds of ${SECONDS} s, ${CONNECTIONS} connections, 1 KiB responses${hasTaskset ? '; proxy pinned to CPU 0, upstream and autocannon to CPU 1' : ''}.`,
    '',
    '| target | req/s | p50 ms | p99 ms | vs bare proxy | vs direct | p99 over bare |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.target} | ${r.rps} | ${r.p50_ms} | ${r.p99_ms} | ${r.vs_bare} | ${r.vs_direct} | ${r.p99_over_bare_ms} ms |`),
    '',
    'Decision alone (lookupHost + evaluate, one rule set in memory), and session lookup from the in-process cache:',
    '',
    '| case | ns/op |',
    '|---|---:|',
    ...micro.map((m: { case: string; ns_per_op: number }) => `| ${m.case} | ${m.ns_per_op} |`),
    ''
  ].join('\n')
  writeFileSync('benchmarks/results/latest.json', JSON.stringify(result, null, 2) + '\n')
  writeFileSync('benchmarks/results/latest.md', md)
  console.log('\n' + md)
  await store.close()
  await idp.close()
  await redis.close()
  for (const c of children) c.kill('SIGTERM')
}

await main()
process.exit(0)
