/**
 * The example configs under config/ stay valid: each goes through the real CLI
 * (`node bin/moatless.js check`, so dist/ must be built: `npm test` builds first), with dummy
 * values for the `${VAR}`s it uses. A broken copy must fail the way an operator sees it.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** Dummy values for every variable the examples reference. */
const EXAMPLE_ENV: Record<string, string> = {
  MOATLESS_CLIENT_SECRET: 'dummy-client-secret',
  MOATLESS_SESSION_SECRET: 'dummy-session-secret-0123456789abcdef0123',
  REDIS_PASSWORD: 'dummy-redis-password',
  DEMO_PORT: '8080',
  DEMO_TLS_PORT: '8443',
  DEMO_IDP_ISSUER: 'http://localhost:5556',
  DEMO_WIKI_UPSTREAM: 'http://127.0.0.1:9001',
  DEMO_ADMIN_UPSTREAM: 'http://127.0.0.1:9002',
  DEMO_CLIENT_SECRET: 'dummy-demo-client-secret',
  DEMO_SESSION_SECRET: 'dummy-demo-session-secret-0123456789abcdef'
}

function moatlessCheck (file: string, env: Record<string, string> = EXAMPLE_ENV): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'moatless.js'), 'check', '--config', file], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      timeout: 20_000
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

const EXAMPLES = ['config/minimal.yaml', 'config/production.yaml', 'config/demo.yaml']

for (const file of EXAMPLES) {
  t.test(`moatless check ${file}`, async (t) => {
    const r = await moatlessCheck(file)
    t.equal(r.code, 0, `exit 0; stderr: ${r.stderr}`)
    t.match(r.stdout, new RegExp(`^${file.replaceAll('.', '\\.')}: ok \\(\\d+ apps?, \\d+ rules?, store (memory|redis)\\)`))
    t.equal(r.stderr.trim(), '')
  })
}

t.test('every ${VAR} of the examples is needed: without them, check names each one', async (t) => {
  const r = await moatlessCheck('config/production.yaml', {})
  t.equal(r.code, 1)
  for (const v of ['MOATLESS_CLIENT_SECRET', 'MOATLESS_SESSION_SECRET', 'REDIS_PASSWORD']) {
    t.match(r.stderr, new RegExp(`^config/production\\.yaml:\\d+:\\d+ .*environment variable ${v} is not set`, 'm'))
  }
})

t.test('a broken copy (an unknown key) exits 1 with FILE:LINE:COL message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'moatless-examples-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines = readFileSync(join(ROOT, 'config/minimal.yaml'), 'utf8').split('\n')
  const at = lines.findIndex((l) => l === '  port: 8080')
  t.ok(at > 0, 'config/minimal.yaml has a listen.port line')
  lines.splice(at + 1, 0, '  bind_adress: 0.0.0.0')
  const file = join(dir, 'broken.yaml')
  writeFileSync(file, lines.join('\n'))
  const r = await moatlessCheck(file)
  t.equal(r.code, 1)
  t.equal(r.stdout, '')
  t.match(r.stderr, new RegExp(`^${file.replaceAll('.', '\\.')}:${at + 2}:3 unknown key "bind_adress" in listen$`, 'm'))
  for (const line of r.stderr.trim().split('\n')) t.match(line, /^[^:]+:\d+:\d+ \S/, 'every line is FILE:LINE:COL message')
})
