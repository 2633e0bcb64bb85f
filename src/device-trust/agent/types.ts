/**
 * What the device agent reports about the machine it runs on (SPEC "Devices": the `posture`
 * claim of `POST /.moatless/device/report`).
 *
 * A check is `true` or `false` only when the agent could tell; `null` means "could not tell"
 * (command missing, not permitted, timed out, output not understood, no desktop session...).
 * The report leaves unknown checks out of the claim altogether (see `postureClaim`), which the
 * server treats as unknown, i.e. not met; `extra.evidence` says, per check, what was seen.
 */
/** Device keys: EC P-256 (ES256) or Ed25519 (EdDSA), as SPEC allows for device JWTs. */
export type DeviceAlg = 'ES256' | 'EdDSA'
export const DEVICE_ALGS: readonly DeviceAlg[] = ['ES256', 'EdDSA']
export const PRIVATE_KEY_FILE = 'device.key.pem'
export const PUBLIC_KEY_FILE = 'device.pub.pem'

export type AgentOs = 'linux' | 'macos' | 'windows'

export type Check = boolean | null

export interface Posture {
  os: AgentOs
  /** Linux: the kernel (os.release()); macOS: the product version (14.5); Windows: 10.0.22631. '' = unknown. */
  os_version: string
  disk_encrypted: Check
  screen_lock: Check
  firewall: Check
  extra: PostureExtra
}

export interface PostureExtra {
  /** Per check (disk_encrypted, screen_lock, firewall, os_version), one line on how it was decided. */
  evidence: Record<string, string>
  [key: string]: string | number | boolean | null | Record<string, string>
}

/** The posture as the report's `posture` claim carries it: unknown checks are left out. */
export interface PostureClaim {
  os: AgentOs
  os_version?: string
  disk_encrypted?: boolean
  screen_lock?: boolean
  firewall?: boolean
  extra: PostureExtra
}

/** Longest text kept per `extra` value: the server takes device JWTs of at most 8 KiB. */
export const MAX_EXTRA_TEXT = 300

function clip<T extends Record<string, unknown>> (o: T): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) =>
    [k, typeof v === 'string' && v.length > MAX_EXTRA_TEXT ? v.slice(0, MAX_EXTRA_TEXT - 1) + '…' : v])) as T
}

export function postureClaim (p: Posture): PostureClaim {
  return {
    os: p.os,
    ...(p.os_version !== '' ? { os_version: p.os_version } : {}),
    ...(p.disk_encrypted !== null ? { disk_encrypted: p.disk_encrypted } : {}),
    ...(p.screen_lock !== null ? { screen_lock: p.screen_lock } : {}),
    ...(p.firewall !== null ? { firewall: p.firewall } : {}),
    // evidence last: it is the long part
    extra: { ...clip(Object.fromEntries(Object.entries(p.extra).filter(([k]) => k !== 'evidence'))), evidence: clip(p.extra.evidence) }
  }
}

/**
 * Several independent sources for one check (e.g. nftables, ufw, firewalld): any `true` wins,
 * else any `false`, else unknown.
 */
export function anyTrue (checks: Check[]): Check {
  if (checks.includes(true)) return true
  if (checks.includes(false)) return false
  return null
}
