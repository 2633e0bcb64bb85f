/** A rule set seeded from a parsed config must read back as the same rules. */
import t from 'tap'
import { loadConfigText } from '../../src/config/index.js'
import { appsAsWritten, decodeRuleSet, encodeRuleSet } from '../../src/rules/ruleset.js'

const CONFIG = `
authenticate: { url: http://auth.localhost:8080 }
idp: { issuer: http://localhost:5556, client_id: c, client_secret: s }
session: { secret: ${'x'.repeat(40)} }
apps:
  - name: wiki
    from: http://wiki.localhost:8080
    to: http://127.0.0.1:9001
    timeout: 1m30s
    session_max_age: 250ms
    rules: [{ name: all, allow: { domains: [example.com] } }]
  - name: admin
    from: http://admin.localhost:8080
    to: http://127.0.0.1:9002
`

t.test('parsed apps survive a round trip through the store', async (t) => {
  const r = loadConfigText(CONFIG, 'inline.yaml', {})
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  const apps = r.loaded.config.apps
  const raw = decodeRuleSet(encodeRuleSet(apps, 'test').body, [])
  t.equal(raw.ok, false, 'parsed apps as they are do not validate again (durations are numbers)')

  const back = decodeRuleSet(encodeRuleSet(appsAsWritten(apps), 'test').body, [])
  if (!back.ok) throw new Error(back.errors.join('; '))
  t.same(back.ruleset.apps.map((a) => [a.name, a.config.timeout, a.config.session_max_age]), [['wiki', 90_000, 250], ['admin', 30_000, undefined]])
  t.same(back.ruleset.apps.map((a) => a.config), apps, 'the same apps, every field')
})
