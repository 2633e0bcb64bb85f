/**
 * Loads moatless.yaml: YAML parse (with node positions) → `${VAR}` substitution inside
 * string scalars → schema validation (schema.ts) → semantic checks → relative paths resolved.
 * Every problem is reported as FILE:LINE:COL at the offending key, all at once.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { BlockList, isIP } from 'node:net'
import {
  LineCounter, parseDocument, visit, isAlias, isCollection, isMap, isScalar, isSeq,
  type Document, type Node as YamlNode, type Scalar
} from 'yaml'
import type { z } from 'zod'
import { Config } from './schema.js'

export interface ConfigError { file: string; line: number; col: number; message: string }

export interface LoadedConfig {
  /** The validated config: defaults applied, durations in ms, relative file paths resolved against `dir`. */
  config: Config
  /** The config file name as given to loadConfig / loadConfigText (used in error messages). */
  file: string
  /** Absolute directory of the config file. */
  dir: string
  /**
   * 1-based line/col of the node at `path` (e.g. `['apps', 0, 'rules', 1, 'allow', 'paths', 0]`),
   * falling back to the nearest existing ancestor. A scalar value is located at the value;
   * a mapping or sequence value (or an empty value) at its key.
   */
  locate (path: ReadonlyArray<string | number>): { line: number; col: number }
  /** The document as plain data after `${VAR}` substitution, before defaults (rule sets are stored in this form). */
  raw: Record<string, unknown>
}

export type LoadResult = { ok: true; loaded: LoadedConfig } | { ok: false; errors: ConfigError[] }

type Path = ReadonlyArray<string | number>
type Pos = { line: number; col: number }
/** Reports at the node of `path` (see LoadedConfig.locate), or with `atKey` at its key. */
type Reporter = (path: Path, message: string, atKey?: boolean) => void

/** Reads and loads a config file. An unreadable file is one error at 1:1. */
export function loadConfig (file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    return { ok: false, errors: [{ file, line: 1, col: 1, message: `cannot read config file: ${reason}` }] }
  }
  return loadConfigText(text, file, env)
}

/** Loads config text; `file` names it in errors and its directory anchors relative paths. */
export function loadConfigText (text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const errors: ConfigError[] = []
  const at = (offset: number | undefined, message: string): void => {
    const p = offset === undefined ? { line: 1, col: 1 } : lineCounter.linePos(offset)
    errors.push({ file, line: p.line, col: p.col, message: oneLine(message) })
  }

  // 1. YAML syntax (and duplicate keys, unresolved tags): nothing else is trustworthy then.
  // Only the first syntax error is reported (the rest are mostly its echoes), with every
  // duplicate key before it.
  const problems = [...doc.errors, ...doc.warnings].sort((a, b) => a.pos[0] - b.pos[0])
  const firstSyntax = problems.find((e) => e.code !== 'DUPLICATE_KEY')
  for (const e of problems) {
    if (firstSyntax !== undefined && e !== firstSyntax && (e.code !== 'DUPLICATE_KEY' || e.pos[0] > firstSyntax.pos[0])) continue
    if (e.code === 'DUPLICATE_KEY') {
      const found = findPairByKeyOffset(doc, e.pos[0])
      const key = found ? JSON.stringify(found.key) : 'key'
      const where = found && found.parent.length > 0 ? ` in ${formatPath(found.parent)}` : ''
      at(e.pos[0], `duplicate key ${key}${where}`)
    } else {
      const { offset, message } = describeSyntaxError(doc, e.pos[0], e.message)
      at(Math.min(offset, text.trimEnd().length), `invalid YAML: ${message}`)
    }
  }
  if (errors.length > 0) return fail(errors)

  const locator = makeLocator(doc, lineCounter)
  const report: Reporter = (path, message, atKey = false) => {
    const p = locator(path, atKey)
    errors.push({ file, line: p.line, col: p.col, message: oneLine(message) })
  }

  // 2. ${VAR} substitution, after parsing: values never become YAML structure.
  const envErrorPaths = substituteEnv(doc, env, (node, message) => at(node.range?.[0], message))

  // 3. Schema.
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    at(0, `invalid YAML: ${(err as Error).message}`)
    return fail(errors)
  }
  const parsed = Config.safeParse(data, { reportInput: true, error: issueMessage })
  if (!parsed.success) {
    const envPaths = new Set(envErrorPaths.map(pathKey))
    for (const issue of parsed.error.issues) {
      reportIssue(issue, [], data, report, envPaths)
    }
    return fail(errors)
  }
  if (errors.length > 0) return fail(errors)

  // 4. Semantics.
  const config = parsed.data
  semanticChecks(config, data, report)
  if (errors.length > 0) return fail(errors)

  // 5. Relative file paths.
  const dir = dirname(resolve(file))
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p))
  if (config.listen.tls) {
    config.listen.tls.cert = abs(config.listen.tls.cert)
    config.listen.tls.key = abs(config.listen.tls.key)
    if (config.listen.tls.client_ca !== undefined) config.listen.tls.client_ca = abs(config.listen.tls.client_ca)
  }
  if (config.signing_key !== undefined) config.signing_key = abs(config.signing_key)

  return { ok: true, loaded: { config, file, dir, locate: (path) => locator(path), raw: data as Record<string, unknown> } }
}

/** One line per error, `FILE:LINE:COL message`, sorted by line then column; no trailing newline. */
export function formatErrors (errors: ConfigError[]): string {
  return sortErrors(errors).map((e) => `${e.file}:${e.line}:${e.col} ${oneLine(e.message)}`).join('\n')
}

// ---------------------------------------------------------------------------------------------

function fail (errors: ConfigError[]): LoadResult {
  return { ok: false, errors: sortErrors(errors) }
}

function sortErrors (errors: ConfigError[]): ConfigError[] {
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.line - b.e.line || a.e.col - b.e.col || a.i - b.i)
    .map(({ e }) => e)
}

function oneLine (s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ')
}

/** `apps[0].rules[1].allow`, with odd keys quoted: `claims["a.b"]`. */
export function formatPath (path: Path): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

function pathKey (path: Path): string {
  return JSON.stringify(path.map(String))
}

// --- locating nodes ---------------------------------------------------------------------------

interface Step { node: unknown; key?: YamlNode }

function keyString (key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value)
  return undefined
}

/** Follows `path` as far as it exists; steps[0] is the root. */
function walk (doc: Document, path: Path): Step[] {
  const steps: Step[] = [{ node: doc.contents }]
  let node: unknown = doc.contents
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc)
    let next: Step | undefined
    if (isMap(node)) {
      const pair = node.items.find((p) => keyString(p.key) === String(seg))
      if (pair) next = { node: pair.value, key: pair.key as YamlNode }
    } else if (isSeq(node)) {
      const i = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : -1
      if (i >= 0 && i < node.items.length) next = { node: node.items[i] }
    }
    if (!next) break
    steps.push(next)
    node = next.node
  }
  return steps
}

function stepOffset (step: Step): number | undefined {
  const { node, key } = step
  const isValueScalar = (isScalar(node) && !(node.value === null && (node.source ?? '') === '')) || isAlias(node)
  if (isValueScalar && (node as YamlNode).range) return (node as YamlNode).range![0]
  if (key?.range) return key.range[0]
  if ((isCollection(node) || isScalar(node)) && node.range) return node.range[0]
  return undefined
}

function makeLocator (doc: Document, lc: LineCounter): (path: Path, atKey?: boolean) => Pos {
  return (path, atKey = false) => {
    const steps = walk(doc, path)
    const last = steps[steps.length - 1] as Step
    if (atKey && steps.length === path.length + 1 && last.key?.range) return lc.linePos(last.key.range[0])
    for (let i = steps.length - 1; i >= 0; i--) {
      const off = stepOffset(steps[i] as Step)
      if (off !== undefined) return lc.linePos(off)
    }
    return { line: 1, col: 1 }
  }
}

function findPairByKeyOffset (doc: Document, offset: number): { key: string; parent: (string | number)[] } | undefined {
  const visit = (node: unknown, path: (string | number)[]): { key: string; parent: (string | number)[] } | undefined => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = keyString(pair.key)
        if ((pair.key as YamlNode | null)?.range?.[0] === offset) return { key: k ?? String(pair.key), parent: path }
        if (k !== undefined) {
          const r = visit(pair.value, [...path, k])
          if (r) return r
        }
      }
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) {
        const r = visit(node.items[i], [...path, i])
        if (r) return r
      }
    }
    return undefined
  }
  return visit(doc.contents, [])
}

/**
 * The parser notices an unclosed quote or flow collection where it gave up (often the next
 * line); report it where it was opened instead.
 */
function describeSyntaxError (doc: Document, offset: number, message: string): { offset: number; message: string } {
  const quote = /^Missing closing (["'])quote/.exec(message)
  const flow = /^Flow (sequence|map) in block collection must be sufficiently indented and end with a ([\]}])/.exec(message)
  if (!quote && !flow) return { offset, message }
  let best: number | undefined
  visit(doc, {
    Node (_key, node) {
      const r = node.range
      if (!r || !(r[0] < offset && offset <= r[2])) return
      const match = quote
        ? isScalar(node) && node.type === (quote[1] === '"' ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE')
        : (flow![1] === 'sequence' ? isSeq(node) : isMap(node)) && (node as { flow?: boolean }).flow === true
      if (match && (best === undefined || r[0] >= best)) best = r[0]
    }
  })
  if (best === undefined) return { offset, message }
  return quote
    ? { offset: best, message: `missing closing ${quote[1]} (quoted string opened here)` }
    : { offset: best, message: `flow ${flow![1] === 'map' ? 'mapping' : 'sequence'} opened here is not closed with ${flow![2]} (or a continuation line is not indented enough)` }
}

// --- ${VAR} substitution ----------------------------------------------------------------------

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Replaces `${VAR}` in every string value scalar (not in keys). `$${` is a literal `${`.
 * A plain scalar that was exactly `${VAR}` is resolved as a YAML core-schema scalar.
 * Returns the paths of scalars that had errors (their value is left unusable).
 */
function substituteEnv (doc: Document, env: NodeJS.ProcessEnv, onError: (node: Scalar, message: string) => void): Path[] {
  const errorPaths: Path[] = []
  const visit = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = keyString(pair.key)
        visit(pair.value, [...path, k ?? ''])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]))
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      const raw = node.value
      const result = expand(raw, env)
      if (result.error !== undefined) {
        onError(node, `${formatPath(path) || 'value'}: ${result.error}`)
        errorPaths.push(path)
        node.value = ''
        return
      }
      const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.test(raw)
      node.value = whole && node.type === 'PLAIN' && node.tag === undefined ? resolveCoreScalar(result.value) : result.value
    }
  }
  visit(doc.contents, [])
  return errorPaths
}

function expand (s: string, env: NodeJS.ProcessEnv): { value: string; error?: undefined } | { value?: undefined; error: string } {
  let out = ''
  let i = 0
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      out += '${'
      i += 3
    } else if (s.startsWith('${', i)) {
      const end = s.indexOf('}', i + 2)
      if (end < 0) return { error: `unterminated "\${" (write $\${ for a literal \${)` }
      const name = s.slice(i + 2, end)
      if (!VAR_NAME.test(name)) return { error: `invalid variable reference "\${${name}}" (use \${NAME}; write $\${ for a literal \${)` }
      const v = env[name]
      if (v === undefined) return { error: `environment variable ${name} is not set` }
      out += v
      i = end + 1
    } else {
      out += s[i]
      i++
    }
  }
  return { value: out }
}

/** YAML 1.2 core schema resolution of a plain scalar's text. */
function resolveCoreScalar (s: string): unknown {
  if (/^(?:~|null|Null|NULL)?$/.test(s)) return null
  if (/^(?:true|True|TRUE)$/.test(s)) return true
  if (/^(?:false|False|FALSE)$/.test(s)) return false
  if (/^[-+]?[0-9]+$/.test(s)) return Number(s)
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8)
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16)
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(s)) return Number(s)
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity
  if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN
  return s
}

// --- schema issues ----------------------------------------------------------------------------

function describeValue (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`
  return typeof v
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping', record: 'a mapping', array: 'a list', string: 'a string', number: 'a number',
  int: 'an integer', boolean: 'a boolean (true/false)', nan: 'a number'
}

/** Per-parse zod error map: path-less messages; schema-level custom messages win over it. */
function issueMessage (iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`
    case 'invalid_value':
      return `expected ${iss.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeValue(iss.input)}`
    case 'too_small': {
      const min = Number(iss.minimum)
      if (iss.origin === 'string') return min === 1 ? 'must not be empty' : `must be at least ${min} characters`
      if (iss.origin === 'array' || iss.origin === 'set') return `must have at least ${min} item${min === 1 ? '' : 's'}`
      return `must be ${iss.inclusive ? '>=' : '>'} ${min}`
    }
    case 'too_big': {
      const max = Number(iss.maximum)
      if (iss.origin === 'string') return `must be at most ${max} characters`
      if (iss.origin === 'array' || iss.origin === 'set') return `must have at most ${max} items`
      return `must be ${iss.inclusive ? '<=' : '<'} ${max}`
    }
    case 'invalid_format':
      return iss.format === 'regex' && 'pattern' in iss ? `must match ${String(iss.pattern)}` : `invalid ${iss.format}`
    default:
      return undefined
  }
}

function getIn (data: unknown, path: Path): unknown {
  let v = data
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string | number, unknown>)[seg]
  }
  return v
}

function hasOwn (obj: unknown, key: string | number): boolean {
  return obj !== null && typeof obj === 'object' && Object.prototype.hasOwnProperty.call(obj, key)
}

function withPath (path: Path, message: string): string {
  const p = formatPath(path)
  if (p === '') return message
  if (message.startsWith(p + ' ') || message.startsWith(p + ':')) return message
  return `${p}: ${message}`
}

/** Keys whose values are never shown in messages. */
const SECRET_KEYS = new Set(['client_secret', 'secret', 'password'])

function reportIssue (
  issue: z.core.$ZodIssue, base: Path, data: unknown,
  report: Reporter, envPaths: Set<string>
): void {
  const path: (string | number)[] = [...base, ...(issue.path as (string | number)[])]
  if (envPaths.has(pathKey(path))) return // already reported as an environment error

  if (SECRET_KEYS.has(String(path[path.length - 1])) && (issue.code === 'invalid_type' || issue.code === 'invalid_value')) {
    // never echo (part of) a secret into check output or logs
    const v = getIn(data, path)
    const got = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`
    if (v !== undefined) {
      report(path, `${formatPath(path)}: expected a string, got ${got}`)
      return
    }
  }
  if (issue.code === 'unrecognized_keys') {
    const where = path.length > 0 ? ` in ${formatPath(path)}` : ' at top level'
    for (const key of issue.keys) report([...path, key], `unknown key ${JSON.stringify(key)}${where}`, true)
    return
  }
  if (issue.code === 'invalid_type' && path.length > 0) {
    const parentPath = path.slice(0, -1)
    const parent = getIn(data, parentPath)
    const last = path[path.length - 1] as string | number
    if (parent !== null && typeof parent === 'object' && !Array.isArray(parent) && !hasOwn(parent, last)) {
      const where = parentPath.length > 0 ? ` in ${formatPath(parentPath)}` : ''
      report(parentPath, `missing required key ${JSON.stringify(String(last))}${where}`)
      return
    }
  }
  if (issue.code === 'invalid_union') {
    const branches = issue.errors
    const rootMismatch = (b: z.core.$ZodIssue[]): boolean =>
      b.length > 0 && b.every((i) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value'))
    const candidates = branches.filter((b) => b.length > 0 && !rootMismatch(b))
    if (candidates.length === 0 && branches.length > 0) {
      const expected: string[] = []
      for (const b of branches) {
        for (const i of b) {
          const name = i.code === 'invalid_type'
            ? (TYPE_NAMES[i.expected] ?? i.expected)
            : i.code === 'invalid_value' ? i.values.map((v) => JSON.stringify(v)).join(' or ') : undefined
          if (name !== undefined && !expected.includes(name)) expected.push(name)
        }
      }
      report(path, withPath(path, `expected ${expected.join(' or ')}, got ${describeValue(getIn(data, path))}`))
      return
    }
    if (candidates.length > 0) {
      const best = candidates.reduce((a, b) => (b.length < a.length ? b : a))
      for (const sub of best) reportIssue(sub, path, data, report, envPaths)
      return
    }
  }
  report(path, withPath(path, issue.message))
}

// --- semantic checks --------------------------------------------------------------------------

const ORIGIN_HINT = 'must be an origin: http(s)://host[:port], without path, query, fragment or credentials'

/** Returns the URL when `s` is an http(s) origin (optionally with a trailing `/`), else undefined. */
function parseOrigin (s: string): URL | undefined {
  const m = /^(https?):\/\/([^/?#@\s]+)\/?$/i.exec(s)
  if (!m) return undefined
  try {
    const u = new URL(s)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined
    if (u.username !== '' || u.password !== '' || u.hostname === '') return undefined
    if (u.pathname !== '/' || u.search !== '' || u.hash !== '') return undefined
    return u
  } catch {
    return undefined
  }
}

export function isLoopbackHost (hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (h === '[::1]' || h === '::1') return true
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/** A single IP address or a CIDR (`10.0.0.0/8`, `fd00::/8`). */
export function isCidrOrIp (s: string): boolean {
  if (isIP(s) !== 0) return true
  const slash = s.indexOf('/')
  if (slash < 0) return false
  const addr = s.slice(0, slash)
  const prefixText = s.slice(slash + 1)
  const family = isIP(addr)
  if (family === 0 || !/^\d{1,3}$/.test(prefixText)) return false
  const prefix = Number(prefixText)
  if (prefix > (family === 4 ? 32 : 128)) return false
  try {
    new BlockList().addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6')
    return true
  } catch {
    return false
  }
}

function semanticChecks (config: Config, data: unknown, report: Reporter): void {
  const err = (path: Path, message: string): void => report(path, `${formatPath(path)}: ${message}`)

  // authenticate.url
  const authOrigin = parseOrigin(config.authenticate.url)
  if (!authOrigin) err(['authenticate', 'url'], `${ORIGIN_HINT}; got ${JSON.stringify(config.authenticate.url)}`)

  // idp.issuer
  {
    const issuer = config.idp.issuer
    let u: URL | undefined
    try { u = new URL(issuer) } catch { u = undefined }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.hostname === '') {
      err(['idp', 'issuer'], `must be an https URL; got ${JSON.stringify(issuer)}`)
    } else if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) {
      err(['idp', 'issuer'], `must use https (http:// only for loopback hosts such as localhost or 127.0.0.1); got ${JSON.stringify(issuer)}`)
    } else if (u.search !== '' || u.hash !== '' || issuer.includes('?') || issuer.includes('#') || u.username !== '' || u.password !== '') {
      err(['idp', 'issuer'], `must not have a query, fragment or credentials; got ${JSON.stringify(issuer)}`)
    }
  }

  // trusted_proxies
  config.trusted_proxies.forEach((p, i) => {
    if (!isCidrOrIp(p)) err(['trusted_proxies', i], `invalid CIDR or IP address ${JSON.stringify(p)}`)
  })

  // device_trust levels
  const levelNames = new Map<string, number>()
  config.device_trust.levels.forEach((level, i) => {
    const path = ['device_trust', 'levels', i, 'name']
    if (level.name === 'none') err(path, '"none" is reserved for requests without a device identity')
    else if (levelNames.has(level.name)) err(path, `duplicate level name ${JSON.stringify(level.name)} (also device_trust.levels[${levelNames.get(level.name)}])`)
    else levelNames.set(level.name, i)
  })
  const knownLevels = ['none', ...levelNames.keys()]

  // apps
  const appNames = new Map<string, number>()
  const appOrigins = new Map<string, number>()
  config.apps.forEach((app, a) => {
    const appPath = ['apps', a]
    if (appNames.has(app.name)) err([...appPath, 'name'], `duplicate app name ${JSON.stringify(app.name)} (also apps[${appNames.get(app.name)}])`)
    else appNames.set(app.name, a)

    const from = parseOrigin(app.from)
    if (!from) {
      err([...appPath, 'from'], `${ORIGIN_HINT}; got ${JSON.stringify(app.from)}`)
    } else if (authOrigin && from.origin === authOrigin.origin) {
      err([...appPath, 'from'], `must differ from the authenticate origin ${authOrigin.origin}`)
    } else if (appOrigins.has(from.origin)) {
      err([...appPath, 'from'], `origin ${from.origin} is already used by apps[${appOrigins.get(from.origin)}]`)
    } else {
      appOrigins.set(from.origin, a)
    }

    let to: URL | undefined
    try { to = new URL(app.to) } catch { to = undefined }
    if (!to || (to.protocol !== 'http:' && to.protocol !== 'https:') || to.hostname === '') {
      err([...appPath, 'to'], `must be an http(s) URL; got ${JSON.stringify(app.to)}`)
    }

    const ruleNames = new Map<string, number>()
    app.rules.forEach((rule, r) => {
      const rulePath = [...appPath, 'rules', r]
      if (ruleNames.has(rule.name)) {
        err([...rulePath, 'name'], `duplicate rule name ${JSON.stringify(rule.name)} in app ${JSON.stringify(app.name)} (also rules[${ruleNames.get(rule.name)}])`)
      } else {
        ruleNames.set(rule.name, r)
      }
      const hasAllow = rule.allow !== undefined
      const hasDeny = rule.deny !== undefined
      if (hasAllow === hasDeny) {
        if (hasAllow) report([...rulePath, 'deny'], `${formatPath(rulePath)}: a rule has exactly one of allow or deny, not both`, true)
        else report(rulePath, `${formatPath(rulePath)}: a rule needs exactly one of allow or deny`)
      }
      for (const kind of ['allow', 'deny'] as const) {
        const condPath = [...rulePath, kind]
        const raw = getIn(data, condPath)
        if (raw !== undefined) checkCondition(raw, condPath, knownLevels, err)
      }
    })
  })
}

/** Checks `device.trust` and `source_ips` at any depth of a (schema-valid) raw condition. */
function checkCondition (cond: unknown, path: (string | number)[], levels: string[], err: (path: Path, message: string) => void): void {
  if (cond === null || typeof cond !== 'object') return
  const c = cond as Record<string, unknown>
  const device = c.device as Record<string, unknown> | undefined
  if (device && typeof device.trust === 'string' && !levels.includes(device.trust)) {
    err([...path, 'device', 'trust'], `unknown device trust level ${JSON.stringify(device.trust)} (known: ${levels.join(', ')})`)
  }
  const ips = c.source_ips
  if (typeof ips === 'string') {
    if (!isCidrOrIp(ips)) err([...path, 'source_ips'], `invalid CIDR or IP address ${JSON.stringify(ips)}`)
  } else if (Array.isArray(ips)) {
    ips.forEach((ip, i) => {
      if (typeof ip === 'string' && !isCidrOrIp(ip)) err([...path, 'source_ips', i], `invalid CIDR or IP address ${JSON.stringify(ip)}`)
    })
  }
  for (const k of ['all_of', 'any_of'] as const) {
    const list = c[k]
    if (Array.isArray(list)) list.forEach((sub, i) => checkCondition(sub, [...path, k, i], levels, err))
  }
  if (c.not !== undefined) checkCondition(c.not, [...path, 'not'], levels, err)
}
