/**
 * `moatless devices ...`: the device inventory in the shared store. Every change goes through
 * the store, which publishes `device-changed`, so each replica drops its cached copy of the
 * record at once (src/device-trust/inventory.ts) and open websockets from the device are
 * decided again.
 *
 * A device is enrolled with one credential at a time; enrolling an existing id again (same
 * owner) adds another credential, e.g. the agent's key to a device known by its certificate.
 */
import { readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { Command, Option } from 'commander'
import { fingerprintOfDer, normalizeFingerprint, parseCertificates } from '../device-trust/client-cert.js'
import { applySettings, parseSetting, SETTABLE_KEYS, SettingError, type Setting } from '../device-trust/posture.js'
import { DeviceKeyError, parseDevicePublicKey } from '../device-trust/public-key.js'
import { TrustLevels } from '../device-trust/trust-levels.js'
import type { LoadedConfig } from '../config/index.js'
import type { DeviceKey, DeviceRecord } from '../store/index.js'
import { action, CliError, iso, oneLine, printJson, printLine } from './output.js'
import { loadChecked, withStore } from './store.js'

const configOption = (): Option => new Option('-c, --config <file>', 'config file (YAML)').makeOptionMandatory()

/** Used in store keys, JWT `iss` and URLs: printable, no spaces, no separators that need quoting. */
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/
const EMAIL = /^[^\s@]+@[^\s@]+$/

export function registerDevicesCommands (program: Command): void {
  const devices = program.command('devices').description('the device inventory (kept in the store)')

  devices.command('enroll')
    .description('add a device (or another credential of an enrolled device) to the inventory')
    .addOption(configOption())
    .requiredOption('--id <id>', 'device id (letters, digits, . _ : @ -)')
    .requiredOption('--owner <email>', 'the one user who may use the device')
    .option('--cert <file>', 'its client certificate (PEM or DER), signed by listen.tls.client_ca')
    .option('--cert-fingerprint <hex>', 'SHA-256 of its client certificate\'s DER (hex, colons allowed)')
    .option('--public-key <file>', 'its public key (PEM SPKI or JWK; EC P-256 or Ed25519): signs device tokens and posture reports')
    .option('--managed', 'managed by IT (MDM)')
    .option('--corp-owned', 'company-owned')
    .option('--json', 'one JSON document')
    .action(action(enrollCommand))

  devices.command('set')
    .description(`set attributes and posture as an MDM sync would; counts as a fresh report (keys: ${SETTABLE_KEYS.join(', ')})`)
    .addOption(configOption())
    .requiredOption('--id <id>', 'device id')
    .argument('<settings...>', 'KEY=VALUE, e.g. disk_encrypted=true os=macos os_version=14.5')
    .option('--json', 'one JSON document')
    .action(action(setCommand))

  devices.command('list')
    .description('one device per line: id, owner, status, trust level, attributes, posture')
    .addOption(configOption())
    .option('--json', 'one JSON document')
    .action(action(listCommand))

  devices.command('show')
    .description('one device, with its credentials and what keeps it from higher levels')
    .addOption(configOption())
    .requiredOption('--id <id>', 'device id')
    .option('--json', 'one JSON document')
    .action(action(showCommand))

  devices.command('revoke')
    .description('revoke a device on every replica (the record stays, with status revoked)')
    .addOption(configOption())
    .requiredOption('--id <id>', 'device id')
    .option('--json', 'one JSON document')
    .action(action(revokeCommand))
}

interface EnrollOptions {
  config: string
  id: string
  owner: string
  cert?: string
  certFingerprint?: string
  publicKey?: string
  managed?: boolean
  corpOwned?: boolean
  json?: boolean
}

type Credential = { kind: 'certificate'; fingerprint: string } | { kind: 'public key'; key: DeviceKey }

async function credentialOf (opts: EnrollOptions): Promise<Credential> {
  const given = [opts.cert, opts.certFingerprint, opts.publicKey].filter((v) => v !== undefined).length
  if (given !== 1) throw new CliError('moatless devices enroll: give exactly one of --cert FILE, --cert-fingerprint HEX or --public-key FILE')
  if (opts.certFingerprint !== undefined) {
    const fp = normalizeFingerprint(opts.certFingerprint)
    if (fp === null) throw new CliError(`moatless devices enroll: --cert-fingerprint ${JSON.stringify(opts.certFingerprint)} is not a SHA-256 fingerprint (64 hex digits, colons allowed)`)
    return { kind: 'certificate', fingerprint: fp }
  }
  if (opts.cert !== undefined) {
    const data = readFile(opts.cert, 'certificate')
    try {
      const text = data.toString('utf8')
      const cert = text.includes('-----BEGIN CERTIFICATE-----')
        ? parseCertificates(text)[0] as X509Certificate
        : new X509Certificate(data)
      if (cert.ca) throw new Error('it is a CA certificate, not a device certificate')
      return { kind: 'certificate', fingerprint: fingerprintOfDer(cert.raw) }
    } catch (err) {
      throw new CliError(`moatless devices enroll: ${opts.cert} is not a valid X.509 certificate (PEM or DER): ${(err as Error).message}`)
    }
  }
  const file = opts.publicKey as string
  try {
    return { kind: 'public key', key: await parseDevicePublicKey(readFile(file, 'public key').toString('utf8')) }
  } catch (err) {
    if (err instanceof DeviceKeyError) throw new CliError(`moatless devices enroll: ${file}: ${err.message}`)
    throw err
  }
}

function readFile (file: string, what: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new CliError(`moatless devices enroll: cannot read ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

function credentialText (c: Credential): string {
  return c.kind === 'certificate' ? `certificate ${c.fingerprint}` : `${c.key.alg} public key ${c.key.kid}`
}

async function enrollCommand (opts: EnrollOptions): Promise<void> {
  if (!DEVICE_ID.test(opts.id)) throw new CliError(`moatless devices enroll: --id ${JSON.stringify(opts.id)}: use 1-128 letters, digits and . _ : @ - (starting with a letter or digit)`)
  if (!EMAIL.test(opts.owner)) throw new CliError(`moatless devices enroll: --owner ${JSON.stringify(opts.owner)} is not an email address`)
  const credential = await credentialOf(opts)
  const owner = opts.owner.toLowerCase()
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'devices enroll', async (store) => {
    // A credential names one device only.
    if (credential.kind === 'certificate') {
      const holder = await store.deviceByFingerprint(credential.fingerprint)
      if (holder !== null && holder.id !== opts.id) throw new CliError(`moatless devices enroll: certificate ${credential.fingerprint} is already enrolled for device ${holder.id}`)
    } else {
      const holder = (await store.listDevices()).find((d) => d.public_keys.some((k) => k.kid === credential.key.kid))
      if (holder !== undefined && holder.id !== opts.id) throw new CliError(`moatless devices enroll: this public key is already enrolled for device ${holder.id}`)
    }
    const now = Date.now()
    const existing = await store.getDevice(opts.id)
    let record: DeviceRecord | null
    let added: boolean
    if (existing === null) {
      record = {
        id: opts.id,
        owner,
        cert_fingerprints: credential.kind === 'certificate' ? [credential.fingerprint] : [],
        public_keys: credential.kind === 'public key' ? [credential.key] : [],
        managed: opts.managed === true,
        corp_owned: opts.corpOwned === true,
        posture: {},
        status: 'active',
        created_at: now,
        updated_at: now
      }
      await store.putDevice(record)
      added = false
    } else {
      if (existing.status !== 'active') throw new CliError(`moatless devices enroll: device ${opts.id} is revoked; enroll the device under a new id`)
      if (existing.owner.toLowerCase() !== owner) throw new CliError(`moatless devices enroll: device ${opts.id} is already enrolled for ${existing.owner}`)
      record = await store.updateDevice(opts.id, (cur) => ({
        ...cur,
        cert_fingerprints: credential.kind === 'certificate' && !cur.cert_fingerprints.includes(credential.fingerprint) ? [...cur.cert_fingerprints, credential.fingerprint] : cur.cert_fingerprints,
        public_keys: credential.kind === 'public key' && !cur.public_keys.some((k) => k.kid === credential.key.kid) ? [...cur.public_keys, credential.key] : cur.public_keys,
        managed: cur.managed || opts.managed === true,
        corp_owned: cur.corp_owned || opts.corpOwned === true,
        updated_at: now
      }))
      if (record === null) throw new CliError(`moatless devices enroll: device ${opts.id} vanished while being updated`)
      added = true
    }
    if (opts.json === true) printJson({ enrolled: describe(record, levelsOf(loaded)), added_credential: added })
    else printLine(`${oneLine(record.id)} ${added ? 'added' : 'enrolled'} ${credentialText(credential)} (owner ${oneLine(record.owner)})`)
  })
}

async function setCommand (settingArgs: string[], opts: { config: string; id: string; json?: boolean }): Promise<void> {
  let settings: Setting[]
  try {
    settings = settingArgs.map(parseSetting)
  } catch (err) {
    if (err instanceof SettingError) throw new CliError(`moatless devices set: ${err.message}`)
    throw err
  }
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'devices set', async (store) => {
    const existing = await store.getDevice(opts.id)
    if (existing === null) throw new CliError(unknown('set', opts.id))
    if (existing.status !== 'active') throw new CliError(`moatless devices set: device ${opts.id} is revoked`)
    const updated = await store.updateDevice(opts.id, (cur) => applySettings(cur, settings, Date.now()))
    if (updated === null) throw new CliError(unknown('set', opts.id))
    const levels = levelsOf(loaded)
    if (opts.json === true) printJson({ device: describe(updated, levels) })
    else printLine(line(updated, levels))
  })
}

async function listCommand (opts: { config: string; json?: boolean }): Promise<void> {
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'devices list', async (store) => {
    const list = await store.listDevices()
    const levels = levelsOf(loaded)
    if (opts.json === true) {
      printJson({ devices: list.map((d) => describe(d, levels)) })
      return
    }
    for (const d of list) printLine(line(d, levels))
  })
}

async function showCommand (opts: { config: string; id: string; json?: boolean }): Promise<void> {
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'devices show', async (store) => {
    const d = await store.getDevice(opts.id)
    if (d === null) throw new CliError(unknown('show', opts.id))
    const levels = levelsOf(loaded)
    if (opts.json === true) {
      printJson({ device: describe(d, levels) })
      return
    }
    const g = grade(d, levels)
    const creds = [
      `certs=${d.cert_fingerprints.length > 0 ? d.cert_fingerprints.join(',') : '-'}`,
      `keys=${d.public_keys.length > 0 ? d.public_keys.map((k) => `${k.alg}:${k.kid}`).join(',') : '-'}`,
      `created=${iso(d.created_at)}`,
      `updated=${iso(d.updated_at)}`
    ]
    const lacks = g.reasons.length > 0 ? [`lacks=${JSON.stringify(g.reasons.join('; '))}`] : []
    printLine(oneLine([line(d, levels), ...creds, ...lacks].join(' ')))
  })
}

async function revokeCommand (opts: { config: string; id: string; json?: boolean }): Promise<void> {
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'devices revoke', async (store) => {
    const existing = await store.getDevice(opts.id)
    if (existing === null) throw new CliError(unknown('revoke', opts.id))
    const already = existing.status === 'revoked'
    const record = already ? existing : await store.revokeDevice(opts.id)
    if (record === null) throw new CliError(unknown('revoke', opts.id))
    if (opts.json === true) printJson({ revoked: record.id, already_revoked: already })
    else printLine(`${oneLine(record.id)} ${already ? 'was already revoked' : 'revoked'}`)
  })
}

function unknown (command: string, id: string): string {
  return `moatless devices ${command}: no device with id ${JSON.stringify(id)} (see moatless devices list)`
}

function levelsOf (loaded: LoadedConfig): TrustLevels {
  return new TrustLevels(loaded.config.device_trust.levels, loaded.config.device_trust.report_max_age)
}

/** The level the device has for its owner, as the proxy would grade it now. */
function grade (d: DeviceRecord, levels: TrustLevels): { trust: string; reasons: string[] } {
  if (d.status !== 'active') return { trust: 'none', reasons: ['this device was revoked'] }
  const { device } = levels.grade(d, Date.now())
  return { trust: device.trust, reasons: device.reasons }
}

function flag (v: boolean | undefined): string {
  return v === undefined ? '?' : String(v)
}

function line (d: DeviceRecord, levels: TrustLevels): string {
  const p = d.posture
  return oneLine([
    d.id,
    d.owner,
    d.status,
    `trust=${grade(d, levels).trust}`,
    `managed=${String(d.managed)}`,
    `corp_owned=${String(d.corp_owned)}`,
    `os=${p.os ?? '?'}`,
    `os_version=${p.os_version ?? '?'}`,
    `disk_encrypted=${flag(p.disk_encrypted)}`,
    `screen_lock=${flag(p.screen_lock)}`,
    `firewall=${flag(p.firewall)}`,
    `reported=${iso(p.reported_at)}`
  ].join(' '))
}

function describe (d: DeviceRecord, levels: TrustLevels): Record<string, unknown> {
  const g = grade(d, levels)
  return {
    id: d.id,
    owner: d.owner,
    status: d.status,
    trust: g.trust,
    lacks: g.reasons,
    managed: d.managed,
    corp_owned: d.corp_owned,
    cert_fingerprints: d.cert_fingerprints,
    public_keys: d.public_keys,
    posture: { ...d.posture, reported_at: d.posture.reported_at === undefined ? null : iso(d.posture.reported_at) },
    created_at: iso(d.created_at),
    updated_at: iso(d.updated_at)
  }
}
