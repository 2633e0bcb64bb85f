import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { renderConfigReference } from '../../src/config/doc.js'

const DOC = fileURLToPath(new URL('../../docs/config.md', import.meta.url))

t.test('docs/config.md is up to date', async (t) => {
  let current = ''
  try { current = readFileSync(DOC, 'utf8') } catch { /* missing: reported below */ }
  t.ok(current === renderConfigReference(), 'docs/config.md is out of date with src/config/schema.ts: run `npm run docs:config`')
})

t.test('the reference covers every key, with types, defaults and descriptions', async (t) => {
  const md = renderConfigReference()
  for (const row of [
    '| `listen.port` | integer 0–65535 | no | `8080` | TCP port (0: any free port) |',
    '| `listen.tls.client_ca` | string | no |  | ask for (never require) client certificates signed by this CA: device identity |',
    '| `authenticate.url` | string | yes |  | central sign-in origin; the IdP redirect_uri is this + /.moatless/callback |',
    '| `session.lifetime` | duration | no | `12h` | a session ends this long after sign-in |',
    '| `store.store_outage_grace` | duration | no | `30s` |',
    '| `store.redis.sentinels[].host` | string | yes |',
    '| `device_trust.levels[].require.os_min` | mapping of string → string | no |',
    '| `apps[].timeout` | duration | no | `30s` | upstream response timeout; 504 past it |',
    '| `apps[].rules[].allow` | condition | no |',
    '| `source_ips` | string or list of strings | client address in one of these CIDRs |',
    '| `device.trust` | string | at least this device trust level |',
    '| `not` | condition | the condition does not hold |'
  ]) {
    t.ok(md.includes(row), row)
  }
  for (const section of ['## Durations', '## Environment variables', '## Rule conditions', '`$${`']) t.ok(md.includes(section), section)
})
