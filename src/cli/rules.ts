/**
 * `moatless rules ...`: the rule set that every replica serves lives in the store, by
 * version (the content hash of the `apps:` as written). `apply` makes a config's apps the
 * active set (replicas follow the `rules-changed` event, src/rules/sync.ts), `--dry-run`
 * replays recent decisions against it first; `export`, `history` and `rollback` work on what
 * is stored; `explain` shows how the config's rules decide one request, without a store.
 */
import { isIP } from 'node:net'
import { hostname, userInfo } from 'node:os'
import { resolve } from 'node:path'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import { evaluate, explain, type CompiledApp, type RuleExplanation, type RuleSet } from '../authz/index.js'
import type { DeviceContext, Identity } from '../context.js'
import type { LoadedConfig } from '../config/index.js'
import { normalizeRequestTarget, type NormalizeRejection } from '../proxy/normalize-path.js'
import { decodeRuleSet, encodeRuleSet, type DecisionSample, type StoredRuleSet } from '../rules/ruleset.js'
import { DECISION_SAMPLES_MAX, type Store } from '../store/store.js'
import { action, CliError, count, iso, oneLine, printJson, printLine } from './output.js'
import { loadChecked, withStore } from './store.js'

/** explain's client address when none is given: a documentation address (RFC 5737), i.e. "from the internet". */
const DEFAULT_SOURCE_IP = '203.0.113.9'

const configOption = (): Option => new Option('-c, --config <file>', 'config file (YAML)').makeOptionMandatory()

export function registerRulesCommands (program: Command): void {
  const rules = program.command('rules').description('the rule set every replica serves (kept in the store)')

  rules.command('apply')
    .description('validate the apps: of FILE and make them the active rule set on every replica')
    .addOption(configOption())
    .option('--dry-run', 'write nothing; replay recent decisions under the new rules and show which would change')
    .option('--samples <n>', 'with --dry-run: how many recent decisions to replay', '1000')
    .option('--json', 'one JSON document')
    .action(action(applyCommand))

  rules.command('export')
    .description('print the active rule set from the store as YAML (an apps: list)')
    .addOption(configOption())
    .option('--json', 'one JSON document instead of YAML')
    .action(action(exportCommand))

  rules.command('rollback')
    .description('re-activate the previous rule set from the history (or --to VERSION)')
    .addOption(configOption())
    .option('--to <version>', 'the version to activate (a unique prefix is enough)')
    .option('--json', 'one JSON document')
    .action(action(rollbackCommand))

  rules.command('history')
    .description('rule sets activated so far, newest first; the active one marked')
    .addOption(configOption())
    .option('--json', 'one JSON document')
    .action(action(historyCommand))

  rules.command('explain')
    .description('how the rules of FILE decide one request (no store needed)')
    .addOption(configOption())
    .requiredOption('--url <url>', 'the URL as the user browses to it, e.g. https://wiki.example.com/admin')
    .option('--user <user>', 'email (or sub) of the signed-in user; without it, an anonymous request')
    .option('--groups <a,b>', 'the user\'s groups, comma-separated')
    .option('--email-verified <bool>', 'whether the IdP verified the email: true or false', 'true')
    .option('--claims <k=v,...>', 'more token claims; values are strings, write k:=JSON for others (mfa:=true)')
    .option('--device-trust <level>', 'the device\'s trust level: none or a configured level', 'none')
    .option('--device-id <id>', 'the device\'s id')
    .option('--method <method>', 'HTTP method', 'GET')
    .option('--source-ip <ip>', 'client address', DEFAULT_SOURCE_IP)
    .option('--json', 'one JSON document')
    .action(action(explainCommand))
}

// --- apply ----------------------------------------------------------------------------------

interface ApplyOptions { config: string; dryRun?: boolean; samples: string; json?: boolean }

async function applyCommand (opts: ApplyOptions): Promise<void> {
  const samples = Number(opts.samples)
  if (!Number.isInteger(samples) || samples < 1 || samples > DECISION_SAMPLES_MAX) {
    throw new CliError(`--samples must be an integer from 1 to ${DECISION_SAMPLES_MAX}; got ${JSON.stringify(opts.samples)}`)
  }
  const { loaded, ruleset } = loadChecked(opts.config)
  const rawApps = Array.isArray(loaded.raw.apps) ? loaded.raw.apps as unknown[] : []
  const { version, body } = encodeRuleSet(rawApps, applySource(loaded))
  // What replicas will decode must compile to the set just checked (it is the same data, as JSON).
  const decoded = decodeRuleSet(body, levelNames(loaded))
  if (!decoded.ok) throw new CliError(`moatless rules apply: the rules of ${loaded.file} do not survive storing: ${decoded.errors.join('; ')}`)
  const size = { apps: ruleset.apps.length, rules: ruleCount(ruleset) }

  await withStore(loaded, 'rules apply', async (store) => {
    const active = await store.activeRuleSetVersion()
    if (opts.dryRun === true) {
      const replay = replayDecisions(await readSamples(store, samples), ruleset)
      printDryRun(version, active, size, replay, opts.json === true)
      return
    }
    if (active === version) {
      if (opts.json === true) printJson({ result: 'unchanged', version, ...size })
      else printLine(`unchanged ${version}`)
      return
    }
    await store.putRuleSet(version, body)
    await store.activateRuleSet(version)
    if (opts.json === true) printJson({ result: 'applied', version, previous: active, ...size })
    else printLine(`applied ${version} (${count(size.apps, 'app')}, ${count(size.rules, 'rule')})`)
  })
}

/** Who applied what, for `export` and `history`. */
function applySource (loaded: LoadedConfig): string {
  let who = ''
  try { who = ` by ${userInfo().username}@${hostname()}` } catch { /* no user entry (some containers) */ }
  return `${resolve(loaded.file)}${who}`
}

function levelNames (loaded: LoadedConfig): string[] {
  return loaded.config.device_trust.levels.map((l) => l.name)
}

function ruleCount (ruleset: RuleSet): number {
  return ruleset.apps.reduce((n, a) => n + a.rules.length, 0)
}

async function readSamples (store: Store, n: number): Promise<DecisionSample[]> {
  const out: DecisionSample[] = []
  for (const text of await store.recentDecisionSamples(n)) {
    try {
      const s = JSON.parse(text) as DecisionSample
      if (typeof s === 'object' && s !== null && typeof s.app === 'string' && typeof s.path === 'string') out.push(s)
    } catch { /* a sample from a newer or broken replica: not replayable */ }
  }
  // The stream is read newest first; a change list reads best in time order.
  return out.sort((a, b) => a.t - b.t)
}

// --- dry run: replaying recent decisions ----------------------------------------------------

/** A decision as replayed: `not-found` when the sample's app is gone from the new set (404). */
type ReplayedDecision = DecisionSample['decision'] | 'not-found'

export interface DecisionChange {
  time: string
  app: string
  method: string
  path: string
  user: string | null
  device_id: string | null
  old: { decision: DecisionSample['decision']; rule: string }
  new: { decision: ReplayedDecision; rule: string; reasons: string[] }
  kind: 'allow→deny' | 'deny→allow' | 'other'
}

export interface Replay { replayed: number; changes: DecisionChange[]; allowToDeny: number; denyToAllow: number; other: number }

/** Decides each sampled request again under `next`; lists those whose decision differs. */
export function replayDecisions (samples: DecisionSample[], next: RuleSet): Replay {
  const byName = new Map(next.apps.map((a) => [a.name, a]))
  const changes: DecisionChange[] = []
  for (const s of samples) {
    const app = byName.get(s.app)
    const now = app === undefined
      ? { decision: 'not-found' as const, rule: 'unknown-host', reasons: [`app ${s.app} is not in the new rule set`] }
      : evaluate(app, sampleInput(s, next))
    if (now.decision === s.decision) continue
    const kind = s.decision === 'allow' ? 'allow→deny' : now.decision === 'allow' ? 'deny→allow' : 'other'
    changes.push({
      time: iso(s.t),
      app: s.app,
      method: s.method,
      path: s.path,
      user: s.identity === null ? null : (s.identity.email ?? s.identity.sub),
      device_id: s.device?.id ?? null,
      old: { decision: s.decision, rule: s.rule },
      new: { decision: now.decision, rule: now.rule, reasons: now.reasons },
      kind
    })
  }
  return {
    replayed: samples.length,
    changes,
    allowToDeny: changes.filter((c) => c.kind === 'allow→deny').length,
    denyToAllow: changes.filter((c) => c.kind === 'deny→allow').length,
    other: changes.filter((c) => c.kind === 'other').length
  }
}

function sampleInput (s: DecisionSample, next: RuleSet): Parameters<typeof evaluate>[1] {
  const identity: Identity | null = s.identity === null
    ? null
    : { sub: s.identity.sub, email: s.identity.email, email_verified: s.identity.email_verified, groups: s.identity.groups ?? [], claims: s.identity.claims ?? {}, via: s.identity.via }
  // The level's rank under the new set's levels when it still exists there.
  const trust = s.device?.trust ?? 'none'
  const rank = next.levels.indexOf(trust)
  const device: DeviceContext = { id: s.device?.id ?? null, trust, trustRank: rank >= 0 ? rank : (s.device?.trustRank ?? 0), reasons: [] }
  return { identity, device, method: s.method, path: s.path, sourceIp: s.source_ip }
}

function printDryRun (version: string, active: string | null, size: { apps: number; rules: number }, r: Replay, json: boolean): void {
  const unchanged = active === version
  if (json) {
    printJson({
      dry_run: true,
      version,
      active,
      result: unchanged ? 'unchanged' : 'would-apply',
      ...size,
      replayed: r.replayed,
      would_change: r.changes.length,
      allow_to_deny: r.allowToDeny,
      deny_to_allow: r.denyToAllow,
      other: r.other,
      changes: r.changes
    })
    return
  }
  printLine(unchanged
    ? `dry run: unchanged ${version} (already active); nothing written`
    : `dry run: would apply ${version} (${count(size.apps, 'app')}, ${count(size.rules, 'rule')}) over ${active ?? 'no active rule set'}; nothing written`)
  for (const c of r.changes) {
    printLine(`${c.time} ${c.app} ${c.method} ${c.path} ${c.user ?? '(anonymous)'} ${c.old.decision} (${oneLine(c.old.rule)}) → ${c.new.decision} (${oneLine(c.new.rule)})`)
  }
  const other = r.other > 0 ? `, ${r.other} other` : ''
  printLine(`${count(r.replayed, 'decision')} replayed, ${r.changes.length} would change (${r.allowToDeny} allow→deny, ${r.denyToAllow} deny→allow${other})`)
}

// --- export ---------------------------------------------------------------------------------

async function exportCommand (opts: { config: string; json?: boolean }): Promise<void> {
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'rules export', async (store) => {
    const version = await store.activeRuleSetVersion()
    if (version === null) throw new CliError('moatless rules export: the store has no active rule set yet (moatless rules apply makes one)')
    const stored = await readStored(store, version)
    if (opts.json === true) {
      printJson({ version, applied_at: iso(stored.applied_at), source: stored.source, apps: stored.apps })
      return
    }
    process.stdout.write(`# version ${version}, applied ${iso(stored.applied_at)} from ${oneLine(String(stored.source))}\n` +
      stringify({ apps: escapeVariables(stored.apps) }))
  })
}

async function readStored (store: Store, version: string): Promise<StoredRuleSet> {
  const body = await store.getRuleSet(version)
  if (body === null) throw new CliError(`rule set ${version} is no longer stored`)
  try {
    return JSON.parse(body) as StoredRuleSet
  } catch {
    throw new CliError(`rule set ${version} in the store is not JSON`)
  }
}

/**
 * Stored values are after `${VAR}` substitution; loading the export again substitutes again.
 * Writing every `${` as `$${` (the config's escape) makes the export load back to exactly
 * what is stored, so export → apply is `unchanged`.
 */
function escapeVariables (v: unknown): unknown {
  if (typeof v === 'string') return v.replaceAll('${', () => '$${') // a function: '$$' in a replacement string is one '$'
  if (Array.isArray(v)) return v.map(escapeVariables)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeVariables(x)]))
  }
  return v
}

// --- rollback and history -------------------------------------------------------------------

async function rollbackCommand (opts: { config: string; to?: string; json?: boolean }): Promise<void> {
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'rules rollback', async (store) => {
    const active = await store.activeRuleSetVersion()
    const history = await store.ruleSetHistory()
    let target: string | undefined
    if (opts.to !== undefined) {
      target = resolveVersion(opts.to, history.map((h) => h.version))
    } else {
      target = history.find((h) => h.version !== active)?.version
      if (target === undefined) throw new CliError('moatless rules rollback: the history has no earlier rule set to roll back to')
    }
    const body = await store.getRuleSet(target)
    if (body === null) throw new CliError(`moatless rules rollback: rule set ${target} is not stored (see moatless rules history)`)
    const decoded = decodeRuleSet(body, levelNames(loaded))
    if (!decoded.ok) {
      throw new CliError(`moatless rules rollback: rule set ${target} no longer compiles with the device trust levels of ${loaded.file}:\n` +
        decoded.errors.map((e) => `  ${e}`).join('\n'))
    }
    if (target === active) {
      if (opts.json === true) printJson({ result: 'unchanged', version: target })
      else printLine(`unchanged ${target} (already active)`)
      return
    }
    await store.activateRuleSet(target)
    if (opts.json === true) printJson({ result: 'rolled-back', version: target, previous: active })
    else printLine(`rolled back to ${target}`)
  })
}

/** A full version, or a prefix that names exactly one version of the history. */
function resolveVersion (given: string, known: string[]): string {
  if (known.includes(given)) return given
  const matches = [...new Set(known.filter((v) => v.startsWith(given)))]
  if (matches.length === 1) return matches[0] as string
  if (matches.length > 1) throw new CliError(`--to ${given} is ambiguous: ${matches.join(', ')}`)
  // Not in the history: it may still be stored (the store checks when activating).
  return given
}

async function historyCommand (opts: { config: string; json?: boolean }): Promise<void> {
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'rules history', async (store) => {
    const active = await store.activeRuleSetVersion()
    const history = await store.ruleSetHistory()
    const stored = new Map<string, StoredRuleSet | null>()
    for (const h of history) {
      if (!stored.has(h.version)) stored.set(h.version, await readStored(store, h.version).catch(() => null))
    }
    // A version activated several times is in the history several times; its newest entry is the active one.
    const activeIndex = history.findIndex((h) => h.version === active)
    const rows = history.map((h, i) => {
      const s = stored.get(h.version) ?? null
      const apps = s !== null && Array.isArray(s.apps) ? s.apps : null
      return {
        version: h.version,
        activated_at: iso(h.activated_at),
        active: i === activeIndex,
        apps: apps?.length ?? null,
        rules: apps === null ? null : apps.reduce<number>((n, a) => n + rulesOf(a), 0),
        source: s?.source ?? null
      }
    })
    if (opts.json === true) {
      printJson({ active, history: rows })
      return
    }
    if (rows.length === 0) process.stderr.write('no rule set has been activated yet\n')
    for (const r of rows) {
      const size = r.apps === null ? 'body no longer stored' : `${count(r.apps, 'app')}, ${count(r.rules ?? 0, 'rule')}`
      const from = r.source === null ? '' : ` from ${oneLine(r.source)}`
      printLine(`${r.version} ${r.activated_at}${r.active ? ' active' : ''} ${size}${from}`)
    }
  })
}

function rulesOf (app: unknown): number {
  const rules = app !== null && typeof app === 'object' ? (app as { rules?: unknown }).rules : undefined
  return Array.isArray(rules) ? rules.length : 0
}

// --- explain --------------------------------------------------------------------------------

interface ExplainOptions {
  config: string
  url: string
  user?: string
  groups?: string
  emailVerified: string
  claims?: string
  deviceTrust: string
  deviceId?: string
  method: string
  sourceIp: string
  json?: boolean
}

const REJECTION_TEXT: Record<NormalizeRejection, string> = {
  'not-origin-form': 'the request target is not a path',
  fragment: 'a # has no place in a request target',
  'malformed-escape': 'a % not followed by two hex digits, or an escape that is not valid UTF-8',
  'encoded-separator': 'an encoded separator (%2F, %5C, %3B, double-encoded or a Unicode look-alike) could be split differently by the upstream',
  backslash: 'a raw \\ is a path separator on some servers',
  nul: 'NUL (raw or %00)',
  'invalid-character': 'a raw control, space, non-ASCII or ; character',
  'empty-segment': 'an empty segment (//) is merged by some servers and not by others',
  'dot-segment': 'a dot segment (. or .., in any spelling) could reach another path than the one decided on'
}

type Explained =
  | { status: 400; decision: 'bad-request'; reason: NormalizeRejection; message: string }
  | { status: 404; decision: 'not-found'; rule: 'unknown-host'; message: string }
  | { status: null; decision: 'internal'; app: string; message: string }
  | {
    status: 200 | 401 | 403
    decision: 'allow' | 'deny' | 'unauthenticated'
    rule: string
    reasons: string[]
    app: CompiledApp
    rules: RuleExplanation[]
  }

async function explainCommand (opts: ExplainOptions): Promise<void> {
  const { loaded, ruleset } = loadChecked(opts.config)
  const target = parseTargetUrl(opts.url)
  const method = opts.method.toUpperCase()
  if (!/^[A-Z!#$%&'*+.^_`|~0-9-]+$/.test(method)) throw new CliError(`--method must be an HTTP method; got ${JSON.stringify(opts.method)}`)
  if (isIP(opts.sourceIp) === 0) throw new CliError(`--source-ip must be an IP address; got ${JSON.stringify(opts.sourceIp)}`)
  const identity = explainIdentity(opts, loaded)
  const device = explainDevice(opts, ruleset)

  const authHost = new URL(loaded.config.authenticate.url).host
  let path = ''
  let search = ''
  const result = ((): Explained => {
    // Same order as the proxy's intake: the path first (400 before anything else), then the host.
    const n = normalizeRequestTarget(target.requestTarget)
    if (!n.ok) return { status: 400, decision: 'bad-request', reason: n.reason, message: REJECTION_TEXT[n.reason] }
    path = n.path
    search = n.search
    if (target.host === authHost) {
      return { status: 404, decision: 'not-found', rule: 'unknown-host', message: `${target.host} is the authenticate origin (sign-in only); no app is published there` }
    }
    const app = ruleset.lookupHost(target.host)
    if (app === undefined) return { status: 404, decision: 'not-found', rule: 'unknown-host', message: `no app is configured for host ${target.host}` }
    if (path.startsWith('/.moatless/') || path === '/.moatless' || path.startsWith('/.well-known/moatless/')) {
      return { status: null, decision: 'internal', app: app.name, message: `${path} is served by Moatless itself on every app origin (or 404); never forwarded, not decided by rules` }
    }
    const input = { identity, device, method, path, sourceIp: opts.sourceIp }
    const d = evaluate(app, input)
    const status = d.decision === 'allow' ? 200 : d.decision === 'deny' ? 403 : 401
    return { status, decision: d.decision, rule: d.rule, reasons: d.reasons, app, rules: explain(app, input) }
  })()

  const request = { method, url: opts.url, host: target.host, path: path === '' ? null : path, search: search === '' ? null : search, source_ip: opts.sourceIp }
  if (opts.json === true) {
    const base = { ...request, identity, device: { id: device.id, trust: device.trust, rank: device.trustRank } }
    if ('rules' in result) {
      printJson({
        ...base,
        status: result.status,
        decision: result.decision,
        rule: result.rule,
        reasons: result.reasons,
        app: { name: result.app.name, from: result.app.from, to: result.app.to },
        rules: result.rules.map((r) => ({ ...r, decided: r.rule === result.rule }))
      })
    } else {
      printJson({ ...base, ...result })
    }
    return
  }
  printExplanation(result, request, identity, device)
}

/** The request target a client sends for `url`: the path as typed (no dot-segment resolution, unlike new URL()). */
function parseTargetUrl (url: string): { host: string; requestTarget: string } {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#\\]*)([^#]*)/.exec(url)
  const scheme = m?.[1]?.toLowerCase()
  if (m === null || (scheme !== 'http' && scheme !== 'https')) {
    throw new CliError(`--url must be an absolute http(s) URL such as https://wiki.example.com/path; got ${JSON.stringify(url)}`)
  }
  const authority = m[2] as string
  if (authority.includes('@')) throw new CliError('--url must not contain credentials')
  let host: string
  try {
    // What a browser sends as Host: lowercase, punycode, no default port.
    host = new URL(`${scheme}://${authority}/`).host
  } catch {
    throw new CliError(`--url has an invalid host: ${JSON.stringify(authority)}`)
  }
  if (host === '') throw new CliError(`--url has no host: ${JSON.stringify(url)}`)
  let rest = m[3] as string
  if (rest === '' || rest.startsWith('?')) rest = '/' + rest
  // A browser percent-encodes spaces and non-ASCII before sending; control characters stay
  // raw here so that they get the proxy's 400.
  let requestTarget: string
  try {
    requestTarget = rest.replace(/[\u0080-\u{10ffff}]|\x20/gu, (c) => encodeURIComponent(c))
  } catch {
    throw new CliError('--url contains a broken Unicode character')
  }
  return { host, requestTarget }
}

function explainIdentity (opts: ExplainOptions, loaded: LoadedConfig): Identity | null {
  const verified = opts.emailVerified.toLowerCase()
  if (verified !== 'true' && verified !== 'false') throw new CliError(`--email-verified must be true or false; got ${JSON.stringify(opts.emailVerified)}`)
  const groups = splitList(opts.groups)
  const extra = parseClaims(opts.claims)
  if (opts.user === undefined || opts.user === '') {
    if (opts.groups !== undefined || opts.claims !== undefined) throw new CliError('--groups and --claims need --user')
    return null
  }
  const email = opts.user.includes('@') ? opts.user : undefined
  const emailVerified = email === undefined ? undefined : verified === 'true'
  const claims: Record<string, unknown> = { sub: opts.user, [loaded.config.idp.groups_claim]: groups }
  if (email !== undefined) { claims.email = email; claims.email_verified = emailVerified }
  return { sub: opts.user, email, email_verified: emailVerified, groups, claims: { ...claims, ...extra }, via: 'session' }
}

function explainDevice (opts: ExplainOptions, ruleset: RuleSet): DeviceContext {
  // ruleset.levels is ['none', ...configured levels lowest first]: the index is the rank.
  const rank = ruleset.levels.indexOf(opts.deviceTrust)
  if (rank < 0) throw new CliError(`--device-trust must be none or a configured level (${ruleset.levels.join(', ')}); got ${JSON.stringify(opts.deviceTrust)}`)
  // A device at some level has been identified: give it an id even when none was named.
  const id = opts.deviceId ?? (rank > 0 ? 'unnamed-device' : null)
  return { id, trust: opts.deviceTrust, trustRank: rank, reasons: [] }
}

function splitList (s: string | undefined): string[] {
  return s === undefined ? [] : s.split(',').map((x) => x.trim()).filter((x) => x !== '')
}

/** `k=v` (a string) or `k:=JSON`; a name given twice collects its values into a list. */
function parseClaims (s: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const item of splitList(s)) {
    const typed = /^([^=:]+):=(.*)$/.exec(item)
    const plain = /^([^=]+)=(.*)$/.exec(item)
    let name: string
    let value: unknown
    if (typed !== null) {
      name = (typed[1] as string).trim()
      try { value = JSON.parse(typed[2] as string) } catch { throw new CliError(`--claims ${item}: the value after := must be JSON`) }
    } else if (plain !== null) {
      name = (plain[1] as string).trim()
      value = plain[2]
    } else {
      throw new CliError(`--claims: expected k=v or k:=JSON, got ${JSON.stringify(item)}`)
    }
    if (!Object.hasOwn(out, name)) out[name] = value
    else out[name] = [...(Array.isArray(out[name]) ? out[name] as unknown[] : [out[name]]), value]
  }
  return out
}

const STATUS_TEXT: Record<string, string> = {
  allow: '200, forwarded upstream',
  deny: '403, forbidden',
  unauthenticated: '401 (a browser is sent to sign in)'
}

function printExplanation (
  result: Explained,
  request: { method: string; url: string; host: string; path: string | null; source_ip: string },
  identity: Identity | null,
  device: DeviceContext
): void {
  if (result.decision === 'bad-request') {
    printLine(`decision: 400 bad request (${result.reason}): ${result.message}; nothing is forwarded`)
    return
  }
  if (result.decision === 'not-found') {
    printLine(`decision: 404 not found: ${result.message}; nothing is forwarded`)
    return
  }
  if (result.decision === 'internal') {
    printLine(`decision: internal: ${result.message}`)
    return
  }
  printLine(`decision: ${result.decision} (${STATUS_TEXT[result.decision]}) by rule ${result.rule}`)
  printLine(`request:  ${request.method} ${request.path ?? ''} on app ${result.app.name} (${result.app.from}) from ${request.source_ip}`)
  if (identity === null) {
    printLine('user:     anonymous')
  } else {
    const verified = identity.email === undefined ? '' : identity.email_verified === true ? ', email verified' : ', email NOT verified'
    printLine(`user:     ${identity.sub}${verified}, groups: ${identity.groups.length > 0 ? identity.groups.join(',') : '(none)'}`)
  }
  printLine(`device:   ${device.id === null ? 'none identified' : `${device.id}, level ${device.trust}`}`)
  if (result.reasons.length > 0) {
    printLine('reasons:')
    for (const r of result.reasons) printLine(`  ${oneLine(r)}`)
  }
  if (result.rules.length === 0) {
    printLine('rules:    (this app has no rules)')
    return
  }
  printLine('rules (deny rules are checked first, then allow rules; the first match decides):')
  for (const r of result.rules) {
    const decided = r.rule === result.rule ? '  ← decided' : ''
    printLine(`  ${r.effect.padEnd(5)} ${oneLine(r.rule)}: ${r.matched ? 'matched' : 'not matched'}${decided}`)
    for (const u of r.unmet) printLine(`        ${oneLine(u)}`)
  }
}
