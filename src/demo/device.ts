/**
 * Alice's laptop in `moatless demo`: the material that lets a browser present a device, and a
 * simulated device agent that sends signed posture reports for it.
 *
 * Files (in `dir`, a private directory of this user, reused across runs while they stay valid,
 * so a certificate imported into a browser keeps working; default ~/.cache/moatless-demo):
 *   ca.crt                      the demo CA: signs the HTTPS listener's certificate and the device's
 *   server.crt, server.key      the HTTPS listener (admin.localhost)
 *   alice-laptop.crt/.key       the device's client certificate; its key also signs posture reports
 *   alice-laptop.p12            the same for importing into a browser (password below)
 *
 * The demo enrolls the device for alice (certificate fingerprint + public key, managed and
 * corp-owned as an MDM would say) with no posture yet: trust level `known`. A posture report,
 * from the simulated agent page or `moatless agent report`, makes it `managed`.
 */
import { createPrivateKey, createPublicKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto'
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { DeviceKey, DeviceRecord } from '../store/index.js'
import { parseDevicePublicKey } from '../device-trust/public-key.js'
import { reportClaims, reportEndpoint, sendReport, signReport, type ReportAnswer } from '../device-trust/agent/report.js'
import type { PostureClaim } from '../device-trust/agent/types.js'
import { createCa, fingerprintOf, pkcs12 } from './pki.js'

export const DEMO_DEVICE_ID = 'alice-laptop'
export const DEMO_DEVICE_OWNER = 'alice@example.com'
export const DEMO_P12_PASSWORD = 'moatless'
/** Host names the HTTPS listener's certificate covers. */
const SERVER_NAMES = ['admin.localhost', 'localhost']
const VALID_DAYS = 30
/** Material closer than this to expiry is made anew. */
const RENEW_BEFORE_MS = 24 * 3_600_000

/** Per user and kept across reboots: $XDG_CACHE_HOME/moatless-demo, else ~/.cache/moatless-demo. */
export function defaultDemoDir (): string {
  const cache = process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== '' ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(cache, 'moatless-demo')
}

export interface DemoDevice {
  id: string
  owner: string
  dir: string
  files: { ca: string; serverCert: string; serverKey: string; deviceCert: string; deviceKey: string; deviceP12: string }
  p12Password: string
  fingerprint: string
  publicKey: DeviceKey
  signingKey: KeyObject
  /** True when the files of an earlier run were still valid and kept (an imported certificate still works). */
  reused: boolean
}

/** Makes (or reuses) the demo CA, the HTTPS certificate and alice's device certificate. */
export async function prepareDemoDevice (dir: string = defaultDemoDir()): Promise<DemoDevice> {
  await privateDir(dir)
  const files = {
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    deviceCert: join(dir, `${DEMO_DEVICE_ID}.crt`),
    deviceKey: join(dir, `${DEMO_DEVICE_ID}.key`),
    deviceP12: join(dir, `${DEMO_DEVICE_ID}.p12`)
  }
  const reused = await stillValid(files)
  if (!reused) {
    const ca = await createCa('Moatless Demo CA', { days: VALID_DAYS })
    const server = await ca.issue({ commonName: 'admin.localhost', dns: SERVER_NAMES, ips: ['127.0.0.1'] })
    const device = await ca.issue({ commonName: `${DEMO_DEVICE_ID} (${DEMO_DEVICE_OWNER})`, usage: 'client' })
    const p12 = await pkcs12(device, ca.cert, { name: `Moatless demo device ${DEMO_DEVICE_ID}`, password: DEMO_P12_PASSWORD })
    // The CA key is not kept: nothing more is ever issued from it.
    await writeAtomically(files.ca, ca.cert)
    await writeAtomically(files.serverCert, server.cert)
    await writeAtomically(files.serverKey, server.key)
    await writeAtomically(files.deviceCert, device.cert)
    await writeAtomically(files.deviceKey, device.key)
    await writeAtomically(files.deviceP12, p12)
  }
  const cert = await readFile(files.deviceCert, 'utf8')
  const signingKey = createPrivateKey(await readFile(files.deviceKey, 'utf8'))
  const publicKey = await parseDevicePublicKey(createPublicKey(signingKey).export({ type: 'spki', format: 'pem' }) as string)
  return { id: DEMO_DEVICE_ID, owner: DEMO_DEVICE_OWNER, dir, files, p12Password: DEMO_P12_PASSWORD, fingerprint: fingerprintOf(cert), publicKey, signingKey, reused }
}

/** The inventory record the demo enrolls: known to the inventory, no posture reported yet. */
export function demoDeviceRecord (device: DemoDevice, now = Date.now()): DeviceRecord {
  return {
    id: device.id,
    owner: device.owner,
    cert_fingerprints: [device.fingerprint],
    public_keys: [device.publicKey],
    managed: true,
    corp_owned: true,
    posture: {},
    status: 'active',
    created_at: now,
    updated_at: now
  }
}

/** Postures the simulated agent can report. */
export const SIMULATED_POSTURES = {
  healthy: { os: 'linux', os_version: '6.1.0', disk_encrypted: true, screen_lock: true, firewall: true, extra: { evidence: { all: 'simulated by moatless demo' } } },
  'disk-off': { os: 'linux', os_version: '6.1.0', disk_encrypted: false, screen_lock: true, firewall: true, extra: { evidence: { all: 'simulated by moatless demo' } } }
} satisfies Record<string, PostureClaim>
export type SimulatedPosture = keyof typeof SIMULATED_POSTURES

/** Sends a posture report for the device, signed by its key, exactly as `moatless agent report` does. */
export async function sendSimulatedReport (device: DemoDevice, authUrl: string, which: SimulatedPosture): Promise<ReportAnswer> {
  const endpoint = reportEndpoint(authUrl)
  const jwt = await signReport(reportClaims(device.id, endpoint, SIMULATED_POSTURES[which]), device.signingKey, 'ES256')
  return await sendReport(endpoint, jwt, { timeoutMs: 5_000 })
}

export class DemoDirError extends Error {}

/**
 * The demo trusts what it finds in `dir` (a CA, keys), so the directory must be this user's
 * alone: made 0700 when missing; an existing one must be a real directory (no symlink), owned
 * by this user, with no access for group or others.
 */
async function privateDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const st = await lstat(dir)
  const uid = process.getuid?.()
  if (!st.isDirectory()) throw new DemoDirError(`${dir} is not a directory (a symlink?); remove it or pick another with --dir`)
  if (uid !== undefined && st.uid !== uid) throw new DemoDirError(`${dir} belongs to another user; remove it or pick another with --dir`)
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new DemoDirError(`${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); run \`chmod 700 ${dir}\` or pick another with --dir`)
  }
}

/** Private (0600) and all-or-nothing: written under a temporary name, then renamed. */
async function writeAtomically (file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data, { mode: 0o600, flag: 'wx' })
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

async function stillValid (files: DemoDevice['files']): Promise<boolean> {
  try {
    const until = Date.now() + RENEW_BEFORE_MS
    const ca = new X509Certificate(await readFile(files.ca))
    const server = new X509Certificate(await readFile(files.serverCert))
    const device = new X509Certificate(await readFile(files.deviceCert))
    const serverKey = createPrivateKey(await readFile(files.serverKey, 'utf8'))
    const deviceKey = createPrivateKey(await readFile(files.deviceKey, 'utf8'))
    await readFile(files.deviceP12)
    const covers = SERVER_NAMES.every((n) => server.checkHost(n) !== undefined)
    return covers && [ca, server, device].every((c) => new Date(c.validTo).getTime() > until) &&
      server.checkIssued(ca) && device.checkIssued(ca) && server.verify(ca.publicKey) && device.verify(ca.publicKey) &&
      server.checkPrivateKey(serverKey) && device.checkPrivateKey(deviceKey)
  } catch {
    return false
  }
}
