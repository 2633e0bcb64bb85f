import { loadConfigText, type LoadedConfig } from '../../src/config/index.js'

/** A minimal valid config; line numbers below are relied on by the tests. */
export const BASE = `authenticate:
  url: http://auth.localhost:8080
idp:
  issuer: https://idp.example.com
  client_id: moatless
  client_secret: s3cret
session:
  secret: 0123456789abcdef0123456789abcdef
apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
`

/** Errors of `text` as `LINE:COL message` strings (sorted), or [] when it loads. */
export function errorsOf (text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const r = loadConfigText(text, '/etc/moatless/moatless.yaml', env)
  if (r.ok) return []
  for (const e of r.errors) if (e.file !== '/etc/moatless/moatless.yaml') throw new Error('wrong file in error')
  return r.errors.map((e) => `${e.line}:${e.col} ${e.message}`)
}

/** Loads `text` and fails loudly when it does not load. */
export function mustLoad (text: string, env: NodeJS.ProcessEnv = {}, file = '/etc/moatless/moatless.yaml'): LoadedConfig {
  const r = loadConfigText(text, file, env)
  if (!r.ok) throw new Error(`expected the config to load:\n${r.errors.map((e) => `${e.line}:${e.col} ${e.message}`).join('\n')}`)
  return r.loaded
}
