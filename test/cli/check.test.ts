import t from 'tap'
import { BIN, cliEnv, CONFIG_HEAD } from '../helpers/cli.js'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const bin = BIN
const dir = mkdtempSync(join(tmpdir(), 'moatless-check-'))
const env = cliEnv()

const base = `${CONFIG_HEAD}apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    rules:
      - name: staff
        allow: { domains: [example.com] }
`

function check (name: string, text: string) {
  const file = join(dir, name)
  writeFileSync(file, text)
  const r = spawnSync(process.execPath, [bin, 'check', '--config', file], { env, encoding: 'utf8' })
  return { file, code: r.status, out: r.stdout, err: r.stderr }
}

t.test('a valid config: exit 0 and a one-line summary', async (t) => {
  const r = check('ok.yaml', base)
  t.equal(r.code, 0, r.err)
  t.match(r.out, /ok \(1 app, 1 rule, store memory\)/)
})

t.test('every error at once, as FILE:LINE:COL message, exit 1', async (t) => {
  const bad = base
    .replace('  client_id: moatless\n', '  client_id: moatless\n  clientsecret: oops\n')
    .replace('        allow: { domains: [example.com] }\n', '        allow: { domains: [example.com] }\n      - name: bad-glob\n        deny: { paths: ["admin/**"] }\n')
  const r = check('bad.yaml', bad)
  t.equal(r.code, 1)
  const lines = r.err.trim().split('\n')
  t.match(lines[0], new RegExp(`^${r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:3 .*clientsecret`), 'unknown key at its own line')
  t.equal(lines.length, 1, 'the rules compiler runs only once the schema passes')
  const globOnly = check('glob.yaml', base.replace('        allow: { domains: [example.com] }\n', '        allow: { domains: [example.com] }\n      - name: bad-glob\n        deny: { paths: ["admin/**"] }\n'))
  t.equal(globOnly.code, 1)
  t.match(globOnly.err, /glob\.yaml:17:25 invalid glob "admin\/\*\*"/, 'rule errors point at the offending value')
})

t.test('serve refuses to start on the same errors', async (t) => {
  const file = join(dir, 'serve-bad.yaml')
  writeFileSync(file, base.replace('session:\n', 'session:\n  lifetim: 1h\n'))
  const r = spawnSync(process.execPath, [bin, 'serve', '--config', file], { env, encoding: 'utf8', timeout: 10_000 })
  t.equal(r.status, 1)
  t.match(r.stderr, /serve-bad\.yaml:8:3 unknown key "lifetim"/)
})
