/**
 * `moatless demo` as a newcomer runs it: the real CLI in a child process. The banner names
 * every URL and file the device part needs; the device material is private and kept for the
 * next run (a certificate imported into a browser keeps working); the HTTPS listener asks for
 * the device certificate; the simulated agent page only sends reports from its own form.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { prepareDemoDevice } from '../../src/demo/device.js'
import { BIN, cliEnv } from '../helpers/cli.js'
import { freePort } from '../helpers/ports.js'
import { startRedis } from '../helpers/redis.js'
import { fingerprintOf } from '../helpers/tls.js'

const dir = mkdtempSync(join(tmpdir(), 'moatless-demo-test-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface RunningDemo {
  child: ChildProcess
  banner: string
  port: number
  tlsPort: number
  /** The decision-log lines printed so far. */
  decisions (): Array<Record<string, unknown>>
  stop (): Promise<number | null>
}

/**
 * The ports are picked free and only listened on a moment later, when the demo starts: on a
 * busy machine another process can take one in between (CI saw "port … is already in use").
 * Then the demo is started again on other ports.
 */
async function startDemoCli (extra: string[] = []): Promise<RunningDemo> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDemoOnce(extra)
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortTaken)) throw err
    }
  }
}

class PortTaken extends Error {}

async function startDemoOnce (extra: string[]): Promise<RunningDemo> {
  const [port, tlsPort] = await Promise.all([freePort(), freePort()])
  const child = spawn(process.execPath, [BIN, 'demo', '--port', String(port), '--tls-port', String(tlsPort), '--dir', dir, ...extra], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const deadline = Date.now() + 30_000
  while (!out.includes('Ctrl-C stops everything')) {
    if (child.exitCode !== null && /is already in use/.test(out + err)) throw new PortTaken(`a port was taken: ${err}`)
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the demo did not start:\n${out}\n${err}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    child,
    banner: out,
    port,
    tlsPort,
    decisions: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'decision'),
    async stop () {
      child.kill('SIGINT')
      return await exited
    }
  }
}

t.test('the banner, the device material, the HTTPS listener and the agent page', async (t) => {
  const demo = await startDemoCli()
  t.teardown(() => { if (demo.child.exitCode === null) demo.child.kill('SIGKILL') })
  const b = demo.banner
  t.match(b, `http://wiki.localhost:${demo.port}/`)
  t.match(b, `http://admin.localhost:${demo.port}/`)
  t.match(b, `https://admin.localhost:${demo.tlsPort}/`)
  t.match(b, `Import ${join(dir, 'alice-laptop.p12')}`)
  t.match(b, `moatless agent report --url http://auth.localhost:${demo.port} --device-id alice-laptop --key ${join(dir, 'alice-laptop.key')}`)
  const agentUrl = /Simulated device agent: (http:\/\/127\.0\.0\.1:\d+)\//.exec(b)?.[1]
  t.ok(agentUrl, 'the banner names the agent page')

  for (const f of ['alice-laptop.key', 'alice-laptop.p12', 'server.key']) {
    t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is private`)
  }

  // The HTTPS listener: the demo CA's certificate for admin.localhost; without a session the
  // answer is the way to sign in. (Device identity over it: test/e2e/browser.test.ts.)
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8')
  const dispatcher = new Agent({
    connect: { ca, servername: 'admin.localhost', cert: readFileSync(join(dir, 'alice-laptop.crt')), key: readFileSync(join(dir, 'alice-laptop.key')) }
  })
  t.teardown(() => dispatcher.close())
  const res = await request(`https://127.0.0.1:${demo.tlsPort}/`, { headers: { host: `admin.localhost:${demo.tlsPort}`, accept: 'text/html' }, dispatcher })
  await res.body.dump()
  t.equal(res.statusCode, 302, 'the HTTPS admin origin is served, with the demo CA\'s certificate')
  t.match(String(res.headers.location), `http://auth.localhost:${demo.port}/`, 'and sends a stranger to sign in')
  // Log lines are written in batches, and at least every 200 ms: the line appears shortly.
  for (let i = 0; i < 60 && demo.decisions().find((l) => l.app === 'admin-tls') === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const seen = demo.decisions().find((l) => l.app === 'admin-tls')
  t.match(seen, { status: 302, path: '/', user: null }, 'decided and logged as the admin-tls app')

  // The agent page: its form carries a token; a POST without it, or from another origin, is refused.
  const page = await request(`${agentUrl ?? ''}/`)
  const html = await page.body.text()
  t.match(html, /Trust level now: <span id="level">known<\/span>/, 'enrolled at start, no report yet')
  const token = /name="token" value="([^"]+)"/.exec(html)?.[1] ?? ''
  t.ok(token.length >= 32)
  const post = async (body: string, headers: Record<string, string> = {}): Promise<number> => {
    const r = await request(`${agentUrl ?? ''}/report`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } })
    await r.body.dump()
    return r.statusCode
  }
  const rebound = await request(`${agentUrl ?? ''}/`, { headers: { host: 'rebound.example:80' } })
  t.equal(rebound.statusCode, 421, 'another Host (DNS rebinding) is not answered')
  t.notMatch(await rebound.body.text(), /token/)
  t.equal(await post('posture=healthy'), 403, 'no token')
  t.equal(await post(`posture=healthy&token=${token}`, { origin: 'http://evil.example' }), 403, 'another origin')
  t.equal(await post(`posture=root&token=${token}`), 400, 'unknown posture')
  const after = await (await request(`${agentUrl ?? ''}/`)).body.text()
  t.match(after, /<span id="level">known<\/span>/, 'nothing was sent')
  t.equal(await post(`posture=healthy&token=${token}`), 303, 'the page\'s own form')
  t.match(await (await request(`${agentUrl ?? ''}/`)).body.text(), /<span id="level">managed<\/span>/, 'the signed report reached the proxy')

  t.equal(await demo.stop(), 0, 'Ctrl-C stops the demo cleanly')
})

t.test('a second run keeps the device certificate a browser may have imported', async (t) => {
  const before = fingerprintOf(readFileSync(join(dir, 'alice-laptop.crt'), 'utf8'))
  const demo = await startDemoCli()
  t.teardown(() => { if (demo.child.exitCode === null) demo.child.kill('SIGKILL') })
  t.equal(fingerprintOf(readFileSync(join(dir, 'alice-laptop.crt'), 'utf8')), before)
  t.equal(await demo.stop(), 0)

  // Broken material is made anew, not used.
  rmSync(join(dir, 'server.key'))
  const again = await startDemoCli()
  t.teardown(() => { if (again.child.exitCode === null) again.child.kill('SIGKILL') })
  t.not(fingerprintOf(readFileSync(join(dir, 'alice-laptop.crt'), 'utf8')), before)
  t.equal(await again.stop(), 0)
})

t.test('the demo directory must be private to this user', async (t) => {
  const open = mkdtempSync(join(tmpdir(), 'moatless-demo-open-'))
  t.teardown(() => rmSync(open, { recursive: true, force: true }))
  chmodSync(open, 0o755)
  await t.rejects(prepareDemoDevice(open), /open to other users \(mode 755\)/)
})

t.test('a key that does not match its certificate is made anew', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'moatless-demo-keys-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  const first = await prepareDemoDevice(d)
  t.equal(first.reused, false)
  t.equal((await prepareDemoDevice(d)).reused, true)
  const other = await prepareDemoDevice(mkdtempSync(join(tmpdir(), 'moatless-demo-other-')))
  writeFileSync(join(d, 'alice-laptop.key'), readFileSync(other.files.deviceKey))
  rmSync(other.dir, { recursive: true, force: true })
  const again = await prepareDemoDevice(d)
  t.equal(again.reused, false, 'mismatched key: new material')
  t.not(again.fingerprint, first.fingerprint)
})

t.test('on Redis, every run enforces its own rules, not what an earlier run left there', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.close())
  for (const run of [1, 2]) {
    const demo = await startDemoCli(['--redis', redis.url])
    t.teardown(() => { if (demo.child.exitCode === null) demo.child.kill('SIGKILL') })
    t.match(demo.banner, 'Redis store')
    // The wiki's public stylesheet goes to this run's wiki app (a new port every run).
    const css = await request(`http://127.0.0.1:${demo.port}/static/wiki.css`, { headers: { host: `wiki.localhost:${demo.port}` } })
    await css.body.dump()
    t.equal(css.statusCode, 200, `run ${run}: forwarded to this run's app`)
    t.equal(await demo.stop(), 0)
  }
})
