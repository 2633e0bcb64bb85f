import t from 'tap'
import { compileRuleSet, ruleSetBuilder, type CompileError } from '../../src/authz/index.js'
import { appConfig, LEVELS } from './fixtures.js'

function errorsOf (apps: Record<string, unknown>[], levels = LEVELS): CompileError[] {
  const result = compileRuleSet(apps.map(appConfig), levels)
  if (result.ok) throw new Error('expected compile errors')
  return result.errors
}

/** The errors of one app with these rules. */
function ruleErrors (...rules: Record<string, unknown>[]): CompileError[] {
  return errorsOf([{ rules }])
}

const R0 = ['apps', 0, 'rules', 0] as const

t.test('compile errors carry the path of the offending value', async (t) => {
  const cases: [string, CompileError[], (string | number)[], RegExp][] = [
    ['glob without leading /', ruleErrors({ name: 'a', allow: { paths: ['/ok', 'admin/**'] } }), [...R0, 'allow', 'paths', 1], /must start with \//],
    ['empty glob', ruleErrors({ name: 'a', allow: { paths: [''] } }), [...R0, 'allow', 'paths', 0], /empty value never matches/],
    ['** inside a segment', ruleErrors({ name: 'a', allow: { paths: ['/a**'] } }), [...R0, 'allow', 'paths', 0], /\*\* must be a whole segment/],
    ['*** segment', ruleErrors({ name: 'a', allow: { paths: ['/a/***'] } }), [...R0, 'allow', 'paths', 0], /\*\* must be a whole segment/],
    ['glob with //', ruleErrors({ name: 'a', allow: { paths: ['/a//b'] } }), [...R0, 'allow', 'paths', 0], /empty segment/],
    ['glob with a dot segment', ruleErrors({ name: 'a', allow: { paths: ['/a/../b'] } }), [...R0, 'allow', 'paths', 0], /dot segment/],
    ['glob with a query', ruleErrors({ name: 'a', allow: { paths: ['/a?b=1'] } }), [...R0, 'allow', 'paths', 0], /not the query/],
    ['glob with a space', ruleErrors({ name: 'a', allow: { paths: ['/a b'] } }), [...R0, 'allow', 'paths', 0], /%20/],
    ['glob with an encoded unreserved char', ruleErrors({ name: 'a', allow: { paths: ['/%61dmin'] } }), [...R0, 'allow', 'paths', 0], /write %61 as a/],
    ['glob with lower-case hex', ruleErrors({ name: 'a', allow: { paths: ['/a%2a'] } }), [...R0, 'allow', 'paths', 0], /%2A/],
    ['glob with an encoded slash', ruleErrors({ name: 'a', allow: { paths: ['/a%2Fb'] } }), [...R0, 'allow', 'paths', 0], /refused/],
    ['glob with a backslash', ruleErrors({ name: 'a', allow: { paths: ['/a\\b'] } }), [...R0, 'allow', 'paths', 0], /\\/],
    ['public path glob', errorsOf([{ public_paths: ['/ok', 'static/**'] }]), ['apps', 0, 'public_paths', 1], /must start with \//],
    ['bad CIDR prefix', ruleErrors({ name: 'a', allow: { source_ips: ['10.0.0.0/33'] } }), [...R0, 'allow', 'source_ips', 0], /prefix length/],
    ['CIDR without prefix digits', ruleErrors({ name: 'a', allow: { source_ips: ['10.0.0.0/'] } }), [...R0, 'allow', 'source_ips', 0], /prefix length/],
    ['IPv6 prefix too long', ruleErrors({ name: 'a', allow: { source_ips: ['::1/129'] } }), [...R0, 'allow', 'source_ips', 0], /prefix length/],
    ['not an IP', ruleErrors({ name: 'a', allow: { source_ips: ['10.0.0.1', 'office'] } }), [...R0, 'allow', 'source_ips', 1], /not an IP/],
    ['IPv4 with a leading zero octet text', ruleErrors({ name: 'a', allow: { source_ips: ['10.0.0.256'] } }), [...R0, 'allow', 'source_ips', 0], /not an IP/],
    ['unknown device level', ruleErrors({ name: 'a', allow: { device: { trust: 'ultra' } } }), [...R0, 'allow', 'device', 'trust'],
      /unknown device trust level "ultra" \(levels: none, known, managed, high\)/],
    ['empty device condition', ruleErrors({ name: 'a', allow: { device: {} } }), [...R0, 'allow', 'device'], /matches every request by accident/],
    ['invalid method', ruleErrors({ name: 'a', allow: { methods: ['GET', 'GE T'] } }), [...R0, 'allow', 'methods', 1], /not an HTTP method/],
    ['empty method', ruleErrors({ name: 'a', allow: { methods: [''] } }), [...R0, 'allow', 'methods', 0], /empty value/],
    ['both allow and deny', ruleErrors({ name: 'a', allow: { groups: 'x' }, deny: { groups: 'y' } }), [...R0], /both allow and deny/],
    ['neither allow nor deny', ruleErrors({ name: 'a' }), [...R0], /needs allow or deny/],
    ['empty condition', ruleErrors({ name: 'a', allow: {} }), [...R0, 'allow'], /empty condition \{\} matches every request by accident/],
    ['empty nested condition', ruleErrors({ name: 'a', deny: { all_of: [{ groups: 'g' }, {}] } }), [...R0, 'deny', 'all_of', 1], /empty condition/],
    ['empty not', ruleErrors({ name: 'a', allow: { groups: 'g', not: {} } }), [...R0, 'allow', 'not'], /empty condition/],
    ['empty all_of', ruleErrors({ name: 'a', allow: { all_of: [] } }), [...R0, 'allow', 'all_of'], /matches every request by accident/],
    ['empty any_of', ruleErrors({ name: 'a', allow: { any_of: [] } }), [...R0, 'allow', 'any_of'], /never matches/],
    ['deep path', ruleErrors({ name: 'a', allow: { any_of: [{ groups: 'g' }, { not: { paths: ['x'] } }] } }),
      [...R0, 'allow', 'any_of', 1, 'not', 'paths', 0], /must start with \//],
    ['empty list', ruleErrors({ name: 'a', allow: { groups: [] } }), [...R0, 'allow', 'groups'], /empty list never matches/],
    ['empty claims', ruleErrors({ name: 'a', allow: { claims: {} } }), [...R0, 'allow', 'claims'], /matches every request by accident/],
    ['empty claim values', ruleErrors({ name: 'a', allow: { claims: { role: [] } } }), [...R0, 'allow', 'claims', 'role'], /empty list/],
    ['domain with @', ruleErrors({ name: 'a', allow: { domains: ['@example.com'] } }), [...R0, 'allow', 'domains', 0], /without @/],
    ['email without @', ruleErrors({ name: 'a', allow: { emails: ['example.com'] } }), [...R0, 'allow', 'emails', 0], /use domains/],
    ['duplicate rule name', ruleErrors({ name: 'a', allow: { groups: 'g' } }, { name: 'a', deny: { groups: 'h' } }), ['apps', 0, 'rules', 1, 'name'], /duplicate rule name/],
    ['reserved rule name', ruleErrors({ name: 'default-deny', allow: { groups: 'g' } }), [...R0, 'name'], /reserved/],
    ['from with a path', errorsOf([{ from: 'http://wiki.localhost/app' }]), ['apps', 0, 'from'], /must be an origin/],
    ['from not a URL', errorsOf([{ from: 'wiki.localhost' }]), ['apps', 0, 'from'], /not a URL/],
    ['from with another scheme', errorsOf([{ from: 'ftp://wiki.localhost' }]), ['apps', 0, 'from'], /http:\/\/ or https:\/\//],
    ['from with credentials', errorsOf([{ from: 'http://u:p@wiki.localhost' }]), ['apps', 0, 'from'], /credentials/],
    ['two apps on one host', errorsOf([{ name: 'a' }, { name: 'b', from: 'http://WIKI.localhost:8080/' }]), ['apps', 1, 'from'], /already served by app "a"/],
    ['two apps with one name', errorsOf([{ from: 'http://a.localhost' }, { from: 'http://b.localhost' }]), ['apps', 1, 'name'], /duplicate app name/],
    ['level named none', errorsOf([{}], ['known', 'none']), ['device_trust', 'levels', 1, 'name'], /built in/],
    ['duplicate level', errorsOf([{}], ['known', 'known']), ['device_trust', 'levels', 1, 'name'], /duplicate/]
  ]
  for (const [what, errors, path, message] of cases) {
    t.equal(errors.length, 1, `${what}: one error (${JSON.stringify(errors)})`)
    t.same(errors[0]?.path, path, `${what}: path`)
    t.match(errors[0]?.message, message, `${what}: message`)
  }
})

t.test('all errors are reported at once', async (t) => {
  const errors = errorsOf([
    { rules: [{ name: 'a', allow: { paths: ['x'], methods: ['G T'] } }, { name: 'b', allow: {} }] },
    { name: 'other', from: 'http://other.localhost', public_paths: ['y'] }
  ])
  t.same(errors.map((e) => e.path), [
    ['apps', 0, 'rules', 0, 'allow', 'paths', 0],
    ['apps', 0, 'rules', 0, 'allow', 'methods', 0],
    ['apps', 0, 'rules', 1, 'allow'],
    ['apps', 1, 'public_paths', 0]
  ])
})

t.test('a valid rule set', async (t) => {
  const result = compileRuleSet([
    appConfig({ from: 'HTTP://Wiki.Localhost:8080', rules: [{ name: 'd', deny: { groups: 'x' } }, { name: 'a', allow: { authenticated: true } }] }),
    appConfig({ name: 'site', from: 'https://site.example:443/' })
  ], LEVELS)
  if (!result.ok) throw new Error(JSON.stringify(result.errors))
  const { ruleset } = result
  const [wiki, site] = ruleset.apps
  t.same(ruleset.levels, ['none', 'known', 'managed', 'high'])
  t.equal(wiki?.from, 'HTTP://Wiki.Localhost:8080', 'from exactly as configured')
  t.equal(wiki?.origin, 'http://wiki.localhost:8080')
  t.equal(wiki?.host, 'wiki.localhost:8080')
  t.equal(site?.host, 'site.example', 'default port dropped')
  t.equal(site?.origin, 'https://site.example')
  t.same(wiki?.rules.map((r) => [r.name, r.effect, r.index]), [['d', 'deny', 0], ['a', 'allow', 1]])
  t.same([...ruleset.byHost.keys()], ['wiki.localhost:8080', 'site.example'])

  t.ok(Object.isFrozen(ruleset), 'ruleset frozen')
  t.ok(Object.isFrozen(ruleset.apps) && Object.isFrozen(ruleset.levels), 'lists frozen')
  t.ok(Object.isFrozen(wiki) && Object.isFrozen(wiki?.rules) && Object.isFrozen(wiki?.rules[0]), 'apps and rules frozen')
  t.ok(Object.isFrozen(wiki?.config) && Object.isFrozen(wiki?.config.rules[0]), 'the config copy is deeply frozen')
  t.throws(() => ruleset.byHost.set('evil', wiki!), TypeError, 'byHost cannot be changed')
  t.throws(() => ruleset.byHost.delete('site.example'), TypeError)
  t.throws(() => ruleset.byHost.clear(), TypeError)
  t.equal(ruleset.byHost.get('site.example'), site)
})

t.test('ruleSetBuilder: one app at a time, as compileRuleSet; built once', async (t) => {
  const configs = [
    appConfig({ name: 'wiki', from: 'http://wiki.localhost:8080' }),
    appConfig({ name: 'wiki', from: 'http://site.example', rules: [{ name: 'public-path', allow: { authenticated: true } }] })
  ]
  const builder = ruleSetBuilder(LEVELS)
  for (const c of configs) builder.add(c)
  const result = builder.build()
  t.same(result, compileRuleSet(configs, LEVELS), 'the same errors, with the same paths, as compileRuleSet')
  t.same(result.ok ? [] : result.errors.map((e) => e.path), [['apps', 1, 'name'], ['apps', 1, 'rules', 0, 'name']], 'paths count the apps added')
  t.throws(() => builder.build(), /build\(\) was called already/)
  t.throws(() => builder.add(configs[0]!), /add\(\) after build\(\)/)

  const ok = ruleSetBuilder([])
  ok.add(configs[0]!)
  const built = ok.build()
  t.equal(built.ok && built.ruleset.lookupHost('WIKI.localhost:8080')?.name, 'wiki')
})

t.test('an empty config compiles', async (t) => {
  const result = compileRuleSet([], [])
  t.ok(result.ok)
  if (result.ok) t.same(result.ruleset.levels, ['none'])
})

t.test('lookupHost', async (t) => {
  const result = compileRuleSet([
    appConfig({ name: 'wiki', from: 'http://wiki.localhost:8080' }),
    appConfig({ name: 'site', from: 'http://site.example' }),
    appConfig({ name: 'secure', from: 'https://secure.example' }),
    appConfig({ name: 'odd', from: 'https://odd.example:80' }),
    appConfig({ name: 'v6', from: 'http://[::1]:8081' }),
    appConfig({ name: 'ip', from: 'http://127.0.0.1:9000' })
  ], [])
  if (!result.ok) throw new Error(JSON.stringify(result.errors))
  const { lookupHost } = result.ruleset
  const cases: [string, string | undefined][] = [
    ['wiki.localhost:8080', 'wiki'],
    ['WIKI.Localhost:8080', 'wiki'],
    ['wiki.localhost', undefined],
    ['wiki.localhost:80', undefined],
    ['wiki.localhost:8081', undefined],
    ['site.example', 'site'],
    ['site.example:80', 'site'],
    ['Site.Example:80', 'site'],
    ['site.example:443', undefined],
    ['secure.example', 'secure'],
    ['secure.example:443', 'secure'],
    ['secure.example:80', undefined],
    ['odd.example:80', 'odd'],
    ['odd.example', undefined],
    ['odd.example:443', undefined],
    ['[::1]:8081', 'v6'],
    ['[::1]', undefined],
    ['127.0.0.1:9000', 'ip'],
    ['', undefined],
    [':80', undefined],
    ['site.example/', undefined],
    ['site.example/x', undefined],
    ['user@site.example', undefined],
    ['site.example ', undefined],
    [' site.example', undefined],
    ['site.example\t', undefined],
    ['site.example:', undefined],
    ['site.example:080', undefined],
    ['site.example:99999', undefined],
    ['site.example:80:80', undefined],
    ['site.example:8o', undefined],
    ['site.example.', undefined],
    ['[::1', undefined],
    ['[::1]x', undefined],
    ['[]:8081', undefined],
    ['site.example,other', undefined],
    ['site.example\u0000', undefined]
  ]
  for (const [host, app] of cases) t.equal(lookupHost(host)?.name, app, JSON.stringify(host))
})
