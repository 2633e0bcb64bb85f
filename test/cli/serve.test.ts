import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startIdp } from '../../src/demo/idp.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/ports.js'
import { startUpstream } from '../helpers/upstream.js'
import { CLIENT_SECRET, SESSION_SECRET, browserSignIn } from '../helpers/stack.js'

const port = await freePort()
const adminPort = await freePort()
const authUrl = `http://auth.localhost:${port}`
const idp = await startIdp({ clients: [{ client_id: 'moatless', client_secret: CLIENT_SECRET, redirect_uris: [`${authUrl}/.moatless/callback`], post_logout_redirect_uris: [`${authUrl}/.moatless/signed_out`] }] })
const upstream = await startUpstream()
t.teardown(async () => { await upstream.close(); await idp.close() })

const dir = mkdtempSync(join(tmpdir(), 'moatless-serve-'))
const file = join(dir, 'moatless.yaml')
writeFileSync(file, `listen: { address: 127.0.0.1, port: ${port} }
admin: { address: 127.0.0.1, port: ${adminPort} }
authenticate: { url: ${authUrl} }
idp:
  issuer: ${idp.issuer}
  client_id: moatless
  client_secret: \${MOATLESS_CLIENT_SECRET}
session:
  secret: \${MOATLESS_SESSION_SECRET}
apps:
  - name: wiki
    from: http://wiki.localhost:${port}
    to: ${upstream.url}
    rules: [{ name: staff, allow: { domains: [example.com] } }]
`)

const child = spawn(process.execPath, [join(process.cwd(), 'bin/moatless.js'), 'serve', '--config', file], {
  env: { ...process.env, MOATLESS_CLIENT_SECRET: CLIENT_SECRET, MOATLESS_SESSION_SECRET: SESSION_SECRET },
  stdio: ['ignore', 'pipe', 'pipe']
})
let out = ''
child.stdout.on('data', (d: Buffer) => { out += d.toString() })
child.stderr.on('data', (d: Buffer) => { out += d.toString() })
const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
t.teardown(() => { child.kill('SIGKILL') })

const admin = `http://127.0.0.1:${adminPort}`
const b = new Browser()
for (let i = 0; i < 300; i++) { // up to 30 s: a loaded CI machine starts processes slowly
  if (out.includes('moatless listening')) break
  await new Promise((resolve) => setTimeout(resolve, 100))
}

t.test('serve: public and admin listeners; health, readiness and metrics only on admin', async (t) => {
  t.match(out, /moatless listening/)
  t.match(out, /in-memory/, 'warns that the memory store serves one replica only')
  t.equal((await b.request(`${admin}/healthz`)).status, 200)
  let ready = 0
  for (let i = 0; i < 50 && ready !== 200; i++) { ready = (await b.request(`${admin}/readyz`)).status; if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 100)) }
  t.equal(ready, 200, 'ready once the IdP is discovered')
  const browser = new Browser()
  const signed = await browserSignIn(browser, { idp, origin: (a: string) => `http://${a}.localhost:${port}` } as never, `http://wiki.localhost:${port}/`, 'alice')
  t.equal(signed.final.status, 200)
  const metrics = await b.request(`${admin}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.body, /moatless_requests_total\{app="wiki",decision="allow",status="200"\} \d+/)
  t.match(metrics.body, /moatless_decision_duration_seconds_bucket/)
  t.match(metrics.body, /moatless_upstream_duration_seconds_bucket\{le="[^"]+",app="wiki"\}/)
  const pub = await b.request(`http://127.0.0.1:${port}/metrics`, { headers: { host: `unknown.localhost:${port}` } })
  t.equal(pub.status, 404, 'no metrics on the public listener')
  t.notMatch(out, new RegExp(CLIENT_SECRET), 'no secret in the output')
})

t.test('SIGTERM: the in-flight request finishes, then the process exits 0', async (t) => {
  const browser = new Browser()
  await browserSignIn(browser, { idp, origin: (a: string) => `http://${a}.localhost:${port}` } as never, `http://wiki.localhost:${port}/`, 'alice')
  const slow = browser.request(`http://wiki.localhost:${port}/slow?ms=700`, { headers: { accept: 'application/json' } })
  await new Promise((resolve) => setTimeout(resolve, 200))
  child.kill('SIGTERM')
  const res = await slow
  t.equal(res.status, 200, 'in-flight request completed')
  t.equal(await exited, 0)
  t.match(out, /shutting down/)
  // Log lines are collected and written in batches: the last ones, written just before the
  // exit, still reach stdout (flushed at shutdown and at exit).
  const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(lines.some((l) => l.msg === 'decision' && l.path === '/slow' && l.status === 200), 'the in-flight request\'s decision line was written')
  t.equal(lines.at(-1)?.msg, 'stopped', 'the last line, written at shutdown, is there')
})
