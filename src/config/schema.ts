/**
 * The one schema for moatless.yaml: validation, TypeScript types (z.output) and the
 * config reference (docs/config.md is generated from the `.describe()` texts below).
 * Every object is strict: an unknown key is an error, reported at its line.
 */
import { z } from 'zod'
import { parseDuration } from './duration.js'

/**
 * A duration as operators write it (`250ms`, `30s`, `5m`, `12h`, `7d`, `1h30m`, or `0`), output in ms.
 * A bare number other than 0 is accepted by the type check only so that it gets this message
 * (a unit is required) instead of a generic "expected string".
 */
export const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? (v === 0 ? 0 : undefined) : parseDuration(v)
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)} (use e.g. 250ms, 30s, 5m, 12h, 7d)` })
    return z.NEVER
  }
  return ms
})
const duration = Duration

/** A criterion value: a single string or a list; a list matches when any element does. */
const stringList = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]))
const claimValues = z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))])
  .transform((v) => (Array.isArray(v) ? v : [v]))

const hostPort = z.strictObject({ host: z.string().min(1).describe('host name or address'), port: z.number().int().min(1).max(65535).describe('TCP port') })

export const Condition = z.strictObject({
  authenticated: z.literal(true).optional().describe('the request carries a valid identity (session or bearer token)'),
  users: stringList.optional().describe('subject (`sub`) or email of the user'),
  emails: stringList.optional().describe('email address (case-insensitive)'),
  domains: stringList.optional().describe('exact domain after the single `@` of a verified email (`email_verified: true`), case-insensitive'),
  groups: stringList.optional().describe('group names from the IdP\'s groups claim'),
  claims: z.record(z.string(), claimValues).optional().describe('ID-token claim NAME has one of the values'),
  device: z.strictObject({
    trust: z.string().optional().describe('at least this device trust level'),
    ids: stringList.optional().describe('one of these device ids')
  }).optional().describe('device requirements'),
  paths: stringList.optional().describe('path globs: `*` one segment, `**` any number; `/admin/**` also matches `/admin`'),
  methods: stringList.optional().describe('HTTP methods (case-insensitive)'),
  source_ips: stringList.optional().describe('client address in one of these CIDRs'),
  get all_of () { return z.array(Condition).optional().describe('every condition holds') },
  get any_of () { return z.array(Condition).optional().describe('at least one condition holds') },
  get not () { return Condition.optional().describe('the condition does not hold') }
})
export type Condition = z.output<typeof Condition>

export const Rule = z.strictObject({
  name: z.string().min(1).describe('shown in decisions, logs and deny pages'),
  allow: Condition.optional().describe('forward when this condition holds (and no deny matched)'),
  deny: Condition.optional().describe('403 when this condition holds; deny overrides allow')
})
export type RuleConfig = z.output<typeof Rule>

export const App = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]+$/, 'app name must match [a-z0-9-]+').describe('unique name, [a-z0-9-]+'),
  from: z.string().describe('public origin users browse to (scheme://host[:port], no path)'),
  to: z.string().describe('upstream URL'),
  public_paths: z.array(z.string()).default([]).describe('path globs served without sign-in (identity headers are still stripped)'),
  identity_headers: z.boolean().default(false).describe('also send X-Moatless-User/-Email/-Groups upstream'),
  preserve_host: z.boolean().default(false).describe('send the client\'s Host upstream instead of the upstream\'s'),
  websockets: z.boolean().default(false).describe('allow websocket upgrades (authorized like any request)'),
  timeout: duration.default(30_000).describe('upstream response timeout; 504 past it'),
  session_max_age: duration.optional().describe('force a fresh sign-in when the session is older than this'),
  rules: z.array(Rule).default([]).describe('evaluated deny-first, then allow; default deny')
})
export type AppConfig = z.output<typeof App>

export const LevelRequirement = z.strictObject({
  enrolled: z.boolean().optional().describe('the device is in the inventory and active'),
  managed: z.boolean().optional().describe('the device is managed (MDM attribute `managed`)'),
  corp_owned: z.boolean().optional().describe('the device is corporate-owned (attribute `corp_owned`)'),
  disk_encrypted: z.boolean().optional().describe('posture: disk encryption is on'),
  screen_lock: z.boolean().optional().describe('posture: a screen lock is set'),
  firewall: z.boolean().optional().describe('posture: the firewall is on'),
  os_min: z.record(z.string(), z.string()).optional().describe('minimum OS version per OS (macos, windows, linux)')
})
export type LevelRequirement = z.output<typeof LevelRequirement>

export const Config = z.strictObject({
  listen: z.strictObject({
    address: z.string().default('0.0.0.0').describe('address to bind'),
    port: z.number().int().min(0).max(65535).default(8080).describe('TCP port (0: any free port)'),
    tls: z.strictObject({
      cert: z.string().describe('PEM certificate chain file'),
      key: z.string().describe('PEM private key file'),
      client_ca: z.string().optional().describe('ask for (never require) client certificates signed by this CA: device identity')
    }).optional().describe('without it, plain HTTP (behind a TLS load balancer)')
  }).default({ address: '0.0.0.0', port: 8080 }).describe('public listener'),
  admin: z.strictObject({
    address: z.string().default('127.0.0.1').describe('address to bind'),
    port: z.number().int().min(0).max(65535).default(9090).describe('TCP port (0: any free port)')
  }).default({ address: '127.0.0.1', port: 9090 }).describe('GET /healthz, /readyz, /metrics; never on the public listener'),
  trusted_proxies: z.array(z.string()).default([]).describe('CIDRs whose X-Forwarded-* and client-cert headers are believed'),
  authenticate: z.strictObject({
    url: z.string().describe('central sign-in origin; the IdP redirect_uri is this + /.moatless/callback')
  }).describe('the central sign-in origin'),
  idp: z.strictObject({
    issuer: z.string().describe('OIDC issuer; http:// only for loopback hosts'),
    client_id: z.string().min(1).describe('OAuth client id registered at the IdP'),
    client_secret: z.string().min(1).describe('OAuth client secret (use `${VAR}`)'),
    scopes: z.array(z.string()).default(['openid', 'email', 'profile']).describe('scopes to request; add `offline_access` for refresh tokens where the IdP needs it'),
    groups_claim: z.string().default('groups').describe('ID-token claim holding the user\'s groups')
  }).describe('the OpenID Connect provider'),
  session: z.strictObject({
    secret: z.string().min(32, 'session.secret must be at least 32 characters').describe('seals cookies and encrypts tokens at rest'),
    lifetime: duration.default(12 * 3_600_000).describe('a session ends this long after sign-in'),
    idle_timeout: duration.default(2 * 3_600_000).describe('a session ends after this long without requests'),
    refresh_interval: duration.default(5 * 60_000).describe('re-check the user at the IdP with the refresh token (most IdPs issue one only for the `offline_access` scope); one that cannot run is tried again after at most 30 s'),
    cache_size: z.number().int().min(100).default(100_000).describe('sessions kept in each replica\'s memory, and as many unsealed session cookies; when full, the session fetched and the cookie unsealed longest ago go first')
  }).describe('server-side sessions'),
  store: z.strictObject({
    redis: z.union([
      z.string(),
      z.strictObject({
        sentinels: z.array(hostPort).min(1).describe('Redis Sentinel nodes'),
        name: z.string().describe('name of the Sentinel-monitored master'),
        password: z.string().optional().describe('Redis password'),
        db: z.number().int().optional().describe('database number')
      }),
      z.strictObject({
        cluster: z.array(hostPort).min(1).describe('Redis Cluster seed nodes'),
        password: z.string().optional().describe('Redis password')
      })
    ]).describe('redis://host:port/db, or { sentinels: [...], name }, or { cluster: [...] }'),
    key_prefix: z.string().default('moatless:').describe('prefix of every Redis key'),
    store_outage_grace: duration.default(30_000).describe('how long to keep serving what was verified before a Redis outage; 0 refuses at once')
  }).optional().describe('absent: in-memory store (one replica only)'),
  signing_key: z.string().optional().describe('private JWK file for the assertion JWT; absent: generated once and kept in the store'),
  device_trust: z.strictObject({
    report_max_age: duration.default(24 * 3_600_000).describe('posture older than this counts as unknown'),
    levels: z.array(z.strictObject({
      name: z.string().regex(/^[a-z0-9_-]+$/, 'level name must match [a-z0-9_-]+').describe('unique, [a-z0-9_-]+; `none` is reserved'),
      require: LevelRequirement.describe('every listed requirement must hold')
    })).default([]).describe('lowest first; a device gets the highest level whose requirements hold')
  }).default({ report_max_age: 24 * 3_600_000, levels: [] }).describe('device trust levels, lowest first'),
  apps: z.array(App).default([]).describe('the published apps')
})
export type Config = z.output<typeof Config>
export type StoreConfig = NonNullable<Config['store']>
