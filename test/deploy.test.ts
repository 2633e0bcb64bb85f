/**
 * docker-compose.yml, deploy/ and the Dockerfile hang together: no Docker engine runs here
 * (CI validates the compose file with `docker-compose config -q`), so this reads the files and
 * checks what would only fail at `docker compose up`: services and ports, mounted files that
 * exist, upstreams and issuer that point at real services, secrets that .env.example provides,
 * and a Moatless config that `moatless check` accepts.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { loadConfigText, type Config } from '../src/config/index.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8')

interface Service {
  image?: string
  build?: unknown
  command?: string[] | string
  environment?: Record<string, string | null>
  volumes?: string[]
  ports?: string[]
  expose?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] | string }
  networks?: string[] | Record<string, { aliases?: string[]; ipv4_address?: string } | null>
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> }
const services = compose.services
const moatlessServices = Object.entries(services).filter(([, s]) => s.build !== undefined).map(([name]) => name)

// The values docker-compose would take from .env (CI copies .env.example there).
const dotenv: Record<string, string> = {}
for (const line of read('.env.example').split('\n')) {
  const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim())
  if (m?.[1] !== undefined) dotenv[m[1]] = m[2] ?? ''
}

const CONFIG_PATH = '/etc/moatless/moatless.yaml'
const configText = read('deploy/moatless.yaml')
const loaded = loadConfigText(configText, 'deploy/moatless.yaml', dotenv)
if (!loaded.ok) throw new Error(`deploy/moatless.yaml does not load with .env.example's values: ${JSON.stringify(loaded.errors)}`)
const config: Config = loaded.loaded.config

/** host port → container port of `ports:` entries like "127.0.0.1:8080:8080". */
function published (s: Service): Map<number, number> {
  const out = new Map<number, number>()
  for (const p of s.ports ?? []) {
    const parts = p.replace(/\/tcp$/, '').split(':')
    out.set(Number(parts.at(-2)), Number(parts.at(-1)))
  }
  return out
}

function aliases (s: Service): string[] {
  if (s.networks === undefined || Array.isArray(s.networks)) return []
  return Object.values(s.networks).flatMap((n) => n?.aliases ?? [])
}

function portOf (u: URL): number {
  return u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port)
}

t.test('the services are there: a load balancer, two Moatless replicas, redis, the IdP, two apps', async (t) => {
  t.same(moatlessServices.sort(), ['moatless-1', 'moatless-2'], 'two replicas built from this repo')
  for (const name of ['lb', 'redis', 'keycloak', 'wiki', 'dashboard']) t.ok(services[name], `service ${name}`)
  for (const name of moatlessServices) {
    const s = services[name] as Service
    t.ok(s.volumes?.includes(`./deploy/moatless.yaml:${CONFIG_PATH}:ro`), `${name} mounts deploy/moatless.yaml where the image's CMD looks`)
    t.equal(s.depends_on?.redis?.condition, 'service_healthy', `${name} waits for redis`)
    t.match(JSON.stringify(s.healthcheck?.test), new RegExp(`127\\.0\\.0\\.1:${config.admin.port}/healthz`), `${name} healthcheck asks the admin port`)
    t.notOk([...published(s).values()].includes(config.listen.port), `${name}'s public listener is reached through the lb only`)
  }
  t.ok(services.redis?.healthcheck, 'redis has a healthcheck')
  t.ok(services.keycloak?.healthcheck, 'keycloak has a healthcheck')
  t.ok(services.lb?.healthcheck, 'lb has a healthcheck')
})

t.test('the lb publishes the port of the app origins and sends to both replicas', async (t) => {
  const lbPorts = published(services.lb as Service)
  for (const app of config.apps) {
    const from = new URL(app.from)
    t.equal(lbPorts.get(portOf(from)), portOf(from), `${app.name}: ${app.from} is published by the lb`)
  }
  t.equal(lbPorts.get(portOf(new URL(config.authenticate.url))), config.listen.port, 'the authenticate origin too, to the replicas\' listen port')
  const nginx = read('deploy/nginx.conf')
  for (const name of moatlessServices) t.match(nginx, new RegExp(`server ${name}:${config.listen.port}\\b`), `nginx balances to ${name}`)
  const lbNet = (services.lb?.networks as Record<string, { ipv4_address?: string }>).moatless
  t.ok(lbNet?.ipv4_address, 'the lb has a fixed address')
  t.same(config.trusted_proxies, [`${lbNet?.ipv4_address ?? ''}/32`], 'and it is the only trusted proxy')
})

t.test('every file mounted from the repo exists', async (t) => {
  let n = 0
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0] ?? ''
      if (!source.startsWith('./') && !isAbsolute(source)) continue // a named volume
      n++
      t.ok(existsSync(join(ROOT, source)), `${name}: ${source} exists`)
    }
  }
  t.ok(n >= 4, 'config, nginx.conf and the realm are mounted')
})

t.test('Moatless\'s upstreams are compose services, on ports they listen on', async (t) => {
  for (const app of config.apps) {
    const to = new URL(app.to)
    const s = services[to.hostname]
    t.ok(s, `${app.name}: ${to.hostname} is a service`)
    t.ok(s?.expose?.includes(String(portOf(to))), `${app.name}: ${to.hostname} exposes ${portOf(to)}`)
    t.match(JSON.stringify(s?.command ?? []), new RegExp(`"--port","${portOf(to)}"`), `${app.name}: ${to.hostname} listens on ${portOf(to)}`)
  }
})

t.test('the redis and the IdP of the config are the compose ones', async (t) => {
  const redis = new URL(config.store?.redis as string)
  t.ok(services[redis.hostname], `store.redis points at service ${redis.hostname}`)
  t.equal(redis.port, '6379')
  t.equal(redis.password, dotenv.REDIS_PASSWORD, 'with the password redis is started with')

  const issuer = new URL(config.idp.issuer)
  const kc = services.keycloak as Service
  t.ok(aliases(kc).includes(issuer.hostname), `${issuer.hostname} resolves to keycloak on the compose network`)
  t.equal(published(kc).get(portOf(issuer)), portOf(issuer), 'and the same host:port reaches it from the browser')
  t.ok(kc.command?.includes(`--hostname=${issuer.origin}`), 'keycloak names itself by that URL')
  t.ok(kc.command?.includes(`--http-port=${portOf(issuer)}`))
  const realmName = issuer.pathname.replace(/^\/realms\//, '')

  const realm = JSON.parse(read('deploy/keycloak/moatless-realm.json')) as {
    realm: string
    groups: Array<{ name: string }>
    users: Array<{ username: string; groups: string[]; emailVerified: boolean }>
    clients: Array<{ clientId: string; secret: string; redirectUris: string[]; attributes: Record<string, string>; protocolMappers: Array<{ protocolMapper: string; config: Record<string, string> }> }>
  }
  t.equal(realm.realm, realmName, 'the realm the issuer names')
  const client = realm.clients.find((c) => c.clientId === config.idp.client_id)
  t.ok(client, 'the client Moatless uses')
  t.equal(client?.secret, '${MOATLESS_CLIENT_SECRET}', 'its secret comes from the environment')
  t.same(client?.redirectUris, [`${config.authenticate.url}/.moatless/callback`])
  t.equal(client?.attributes['post.logout.redirect.uris'], `${config.authenticate.url}/.moatless/signed_out`)
  const mapper = client?.protocolMappers.find((m) => m.protocolMapper === 'oidc-group-membership-mapper')
  t.equal(mapper?.config['claim.name'], config.idp.groups_claim, 'groups arrive in the claim the config reads')
  t.equal(mapper?.config['id.token.claim'], 'true')
  t.equal(mapper?.config['full.path'], 'false', 'plain group names, as the rules spell them')
  t.same(realm.groups.map((g) => g.name).sort(), ['contractors', 'engineering'])
  t.same(realm.users.map((u) => [u.username, u.groups, u.emailVerified]), [
    ['alice', ['/engineering'], true],
    ['bob', ['/contractors'], true],
    ['carol', ['/engineering'], false]
  ])
  t.ok(services.keycloak?.environment?.MOATLESS_CLIENT_SECRET, 'keycloak gets the secret for the import')
})

t.test('every secret comes from .env, and .env.example provides each', async (t) => {
  const composeText = read('docker-compose.yml')
  const used = new Set([...composeText.matchAll(/(?<!\$)\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] as string))
  t.ok(used.size >= 3)
  for (const v of used) t.ok(dotenv[v], `.env.example sets ${v}`)
  const configVars = new Set([...configText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map((m) => m[1] as string))
  for (const name of moatlessServices) {
    for (const v of configVars) t.ok(services[name]?.environment?.[v], `${name} gets ${v} for deploy/moatless.yaml`)
  }
  for (const [k, v] of Object.entries(dotenv)) t.notOk(composeText.includes(v), `the value of ${k} is not written in the compose file`)
})

t.test('the Dockerfile runs the config the compose file mounts, as a non-root user, with a healthcheck', async (t) => {
  const dockerfile = read('Dockerfile')
  t.match(dockerfile, /^FROM node:20[^\s]* AS build$/m)
  t.match(dockerfile, /^RUN npm ci .*&& npm run build$/m)
  t.match(dockerfile, /^RUN npm ci --omit=dev /m)
  t.match(dockerfile, /^USER node$/m)
  t.match(dockerfile, /^HEALTHCHECK .*/m)
  t.match(dockerfile, new RegExp(`127\\.0\\.0\\.1:${config.admin.port}/healthz`))
  t.match(dockerfile, /^ENTRYPOINT \["node", ?"bin\/moatless\.js"\]$/m)
  t.match(dockerfile, new RegExp(`^CMD \\["serve", ?"--config", ?"${CONFIG_PATH.replaceAll('.', '\\.')}"\\]$`, 'm'))
})

t.test('moatless check accepts deploy/moatless.yaml', async (t) => {
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin', 'moatless.js'), 'check', '--config', 'deploy/moatless.yaml'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...dotenv },
      timeout: 20_000
    }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }))
  })
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^deploy\/moatless\.yaml: ok \(2 apps, 3 rules, store redis\)/)
})
