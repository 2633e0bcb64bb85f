/**
 * Renders docs/config.md from the zod schema (keys, types, defaults, `.describe()` texts).
 * Regenerate with `npm run docs:config`; test/config/doc.test.ts fails when it is stale.
 */
import { z } from 'zod'
import { Condition, Config, Duration, LevelRequirement } from './schema.js'
import { formatDuration } from './duration.js'

type AnySchema = z.core.$ZodType

interface Row { key: string; type: string; required: boolean; default?: string; description: string }

function def (s: AnySchema): Record<string, unknown> & { type: string } {
  return s._zod.def as unknown as Record<string, unknown> & { type: string }
}

function descriptionOf (s: AnySchema): string | undefined {
  return z.globalRegistry.get(s)?.description
}

/** Peels optional/default/nullable wrappers; collects whether the key may be left out, its default and its description. */
function unwrap (s: AnySchema): { inner: AnySchema; optional: boolean; defaultValue?: unknown; hasDefault: boolean; description?: string } {
  let optional = false
  let hasDefault = false
  let defaultValue: unknown
  let description = descriptionOf(s)
  let cur = s
  for (;;) {
    const d = def(cur)
    if (d.type === 'optional') optional = true
    else if (d.type === 'default' || d.type === 'prefault') {
      if (!hasDefault) { hasDefault = true; defaultValue = d.defaultValue }
    } else if (d.type !== 'nullable') break
    cur = d.innerType as AnySchema
    description ??= descriptionOf(cur)
  }
  return { inner: cur, optional: optional || hasDefault, defaultValue, hasDefault, description }
}

function isCondition (s: AnySchema): boolean {
  return unwrap(s).inner === Condition
}

function leafJson (s: AnySchema): Record<string, unknown> {
  try {
    return z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  } catch {
    return {}
  }
}

function typeName (s: AnySchema): string {
  const { inner } = unwrap(s)
  if (inner === Duration) return 'duration'
  if (inner === Condition) return 'condition'
  const d = def(inner)
  switch (d.type) {
    case 'string': {
      const j = leafJson(inner)
      if (typeof j.pattern === 'string') return `string \`${j.pattern.replace(/^\^/, '').replace(/\$$/, '')}\``
      if (typeof j.minLength === 'number' && j.minLength > 1) return `string (≥ ${j.minLength} chars)`
      return 'string'
    }
    case 'number': {
      const j = leafJson(inner)
      const base = j.type === 'integer' ? 'integer' : 'number'
      if (typeof j.minimum === 'number' && typeof j.maximum === 'number' && j.maximum <= 1e9) return `${base} ${j.minimum}–${j.maximum}`
      return base
    }
    case 'boolean': return 'boolean'
    case 'literal': return (d.values as unknown[]).map((v) => JSON.stringify(v)).join(' or ')
    case 'array': {
      const el = d.element as AnySchema
      const elType = def(unwrap(el).inner).type === 'object' && !isCondition(el) ? 'mapping' : typeName(el)
      return `list of ${/ or /.test(elType) ? `(${elType})` : /^[a-z]+$/.test(elType) ? `${elType}s` : elType}`
    }
    case 'object': return 'mapping'
    case 'record': return `mapping of ${typeName(d.keyType as AnySchema)} → ${typeName(d.valueType as AnySchema)}`
    case 'union': {
      const names = (d.options as AnySchema[]).map((o) => typeName(o))
      return [...new Set(names)].join(' or ')
    }
    case 'pipe': return typeName(d.in as AnySchema)
    default: return d.type
  }
}

function formatDefault (inner: AnySchema, value: unknown): string {
  if (inner === Duration && typeof value === 'number') return `\`${formatDuration(value)}\``
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return '(see its keys)'
  if (Array.isArray(value)) return `\`[${value.map((v) => JSON.stringify(v)).join(', ')}]\``
  return `\`${JSON.stringify(value)}\``
}

function collect (shape: Record<string, AnySchema>, prefix: string, rows: Row[], note = ''): void {
  for (const [key, schema] of Object.entries(shape)) {
    const path = prefix === '' ? key : `${prefix}.${key}`
    const u = unwrap(schema)
    let description = u.description ?? ''
    if (isCondition(schema)) description = `${description}${description ? '; ' : ''}see [Rule conditions](#rule-conditions)`
    rows.push({
      key: path,
      type: typeName(schema),
      required: !u.optional,
      ...(u.hasDefault ? { default: formatDefault(unwrap(u.inner).inner, u.defaultValue) } : {}),
      description: note + description
    })
    descend(u.inner, path, rows, note)
  }
}

function descend (inner: AnySchema, path: string, rows: Row[], note: string): void {
  if (inner === Condition || inner === Duration) return
  const d = def(inner)
  if (d.type === 'object') collect(d.shape as Record<string, AnySchema>, path, rows, note)
  else if (d.type === 'array') {
    const el = unwrap(d.element as AnySchema).inner
    descend(el, `${path}[]`, rows, note)
  } else if (d.type === 'union') {
    for (const option of d.options as AnySchema[]) {
      const o = unwrap(option).inner
      if (def(o).type === 'object') {
        const keys = Object.keys(def(o).shape as object)
        collect(def(o).shape as Record<string, AnySchema>, path, rows, `(form \`{ ${keys.join(', ')} }\`) `)
      }
    }
  }
}

function cell (s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function table (rows: Row[]): string {
  const lines = ['| Key | Type | Required | Default | Description |', '|---|---|---|---|---|']
  for (const r of rows) {
    lines.push(`| \`${r.key}\` | ${cell(r.type)} | ${r.required ? 'yes' : 'no'} | ${cell(r.default ?? '')} | ${cell(r.description)} |`)
  }
  return lines.join('\n')
}

function criteriaTable (shape: Record<string, AnySchema>, prefix = ''): string[] {
  const lines: string[] = []
  for (const [key, schema] of Object.entries(shape)) {
    const u = unwrap(schema)
    lines.push(`| \`${prefix}${key}\` | ${cell(typeName(schema))} | ${cell(u.description ?? '')} |`)
    if (u.inner !== Condition && def(u.inner).type === 'object') {
      lines.push(...criteriaTable(def(u.inner).shape as Record<string, AnySchema>, `${prefix}${key}.`))
    }
  }
  return lines
}

/** The Markdown of docs/config.md. */
export function renderConfigReference (): string {
  const rows: Row[] = []
  collect(def(Config).shape as Record<string, AnySchema>, '', rows)
  const conditionShape = def(Condition).shape as Record<string, AnySchema>
  const levelShape = def(LevelRequirement).shape as Record<string, AnySchema>

  const out = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`. Do not edit by hand. -->

Moatless reads one YAML file, given with \`--config FILE\`. \`moatless check --config FILE\`
validates it and prints every problem as \`FILE:LINE:COL message\`, at the line of the
offending key.

- Unknown keys are errors, at every level (including inside rule conditions).
- "Required" means required whenever the enclosing mapping is present.
- Relative file paths (\`listen.tls.cert\`, \`listen.tls.key\`, \`listen.tls.client_ca\`,
  \`signing_key\`) are resolved against the directory of the config file.
- \`key[]\` stands for every element of the list \`key\`.

## Keys

${table(rows)}

## Checks beyond the types

- \`authenticate.url\` and every \`apps[].from\` are origins: \`http(s)://host[:port]\`, no path
  (a lone \`/\` is fine), query, fragment or credentials.
- \`idp.issuer\` uses \`https://\`; \`http://\` is accepted only for loopback hosts
  (\`localhost\`, \`*.localhost\`, \`127.0.0.0/8\`, \`[::1]\`).
- \`apps[].to\` is an \`http://\` or \`https://\` URL.
- App names are unique; app origins are unique and differ from the authenticate origin.
- \`trusted_proxies\` and \`source_ips\` entries are IP addresses or CIDRs (\`10.0.0.0/8\`, \`fd00::/8\`).
- Device trust level names are unique; \`none\` is reserved (no device identity).
- Rule names are unique within an app; each rule has exactly one of \`allow\` / \`deny\`.
- \`device: { trust: LEVEL }\` names \`none\` or a configured level.

## Durations

A duration is a number with a unit: \`ms\`, \`s\`, \`m\`, \`h\`, \`d\` (e.g. \`250ms\`, \`30s\`,
\`5m\`, \`12h\`, \`7d\`), or several of them combined (\`1h30m\`, \`1.5h\`). \`0\` is zero.
A bare number other than \`0\` is an error (the unit is required).

## Environment variables

\`\${VAR}\` inside a string value is replaced by the environment variable \`VAR\`
(\`[A-Za-z_][A-Za-z0-9_]*\`); an unset variable is an error. \`$\${\` is a literal \`\${\`.

- Substitution happens after the YAML is parsed, so a value can never add YAML structure:
  whatever the variable holds stays inside that one value.
- A plain (unquoted) value that is exactly \`\${VAR}\` takes the variable's text as a YAML
  scalar: \`port: \${PORT}\` with \`PORT=8080\` is the number 8080, \`true\`/\`false\` are
  booleans. Quote it (\`"\${PORT}"\`) to keep a string. Anything else stays a string.
- Keys are not substituted.
- Inside flow collections (\`[...]\`, \`{...}\`) quote the value: \`{ secret: "\${S}" }\`.

## Rule conditions

\`apps[].rules[]\` have a \`name\` and exactly one of \`allow\` / \`deny\`, whose value is a
condition. In a condition, keys are ANDed; a list value matches if any element matches (a
single value is a one-element list). Evaluation: a public path is allowed without identity;
otherwise an identity is needed, any matching \`deny\` gives 403, else any matching \`allow\`
forwards, else 403 (\`default-deny\`).

| Criterion | Type | Matches when |
|---|---|---|
${criteriaTable(conditionShape).join('\n')}

## Device trust level requirements

\`device_trust.levels[].require\` lists what a device needs for that level; every listed key
must hold. Posture older than \`device_trust.report_max_age\` counts as unknown (not met).

| Requirement | Type | Meaning |
|---|---|---|
${criteriaTable(levelShape).join('\n')}
`
  return out
}
