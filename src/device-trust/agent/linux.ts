/**
 * Linux posture, read from the machine: the commands and files behind each check, turned
 * into answers by the parsers of linux-parse.ts.
 *
 * - os_version: the kernel release (os.release(), as `uname -r`); SPEC's `os_min.linux`
 *   compares the kernel. The distribution goes to extra (os_id, os_name, os_version_id).
 * - disk_encrypted: the root filesystem's block device sits on dm-crypt/LUKS
 *   (`findmnt` → `lsblk -s`, or without lsblk a walk of /sys/class/block/.../slaves and
 *   dm/uuid = CRYPT-...); ZFS roots: native encryption (`zfs get encryption`). A root that is
 *   not a block device (overlay in a container, NFS...) is unknown.
 * - firewall: any of nftables filtering input (`nft list ruleset`, see parseNftRuleset),
 *   `ufw status` active, `firewall-cmd --state` running. nft and ufw need root; as a normal
 *   user the answer is usually unknown.
 * - screen_lock: GNOME (gsettings) or KDE (kreadconfig) when the agent runs inside such a
 *   desktop session (XDG_CURRENT_DESKTOP); otherwise unknown. gsettings outside a session
 *   only shows the schema defaults, so it is not asked then.
 */
import { readFile, readdir, realpath, stat } from 'node:fs/promises'
import { release } from 'node:os'
import { basename } from 'node:path'
import { runCommand, whyNot, type Runner } from './exec.js'
import {
  cryptInSysfs, describeChain, gnomeScreenLock, parseFindmnt, parseFirewalldState, parseGsettingsBool,
  parseGsettingsUint, parseKdeAutolock, parseLsblk, parseNftRuleset, parseOsRelease, parseProcMounts,
  parseUfwStatus, parseZfsEncryption, type BlockSysfs, type RootMount
} from './linux-parse.js'
import { anyTrue, type Check, type Posture } from './types.js'

/** Everything the collector touches, so that tests can hand it a fake machine. */
export interface LinuxHost {
  run: Runner
  readText: (path: string) => Promise<string | null>
  /** The sysfs view of block devices, loaded for the names the walk asks for. */
  sysfs: () => Promise<BlockSysfs>
  realpath: (path: string) => Promise<string | null>
  env: NodeJS.ProcessEnv
  kernel: () => string
}

async function readText (path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return null
  }
}

/** Reads /sys/class/block once: every device's dm/uuid and slaves. */
async function loadSysfs (): Promise<BlockSysfs> {
  const root = '/sys/class/block'
  const uuids = new Map<string, string | null>()
  const slaves = new Map<string, string[]>()
  let names: string[] = []
  try {
    names = await readdir(root)
  } catch { /* no sysfs */ }
  await Promise.all(names.map(async (n) => {
    uuids.set(n, await readText(`${root}/${n}/dm/uuid`))
    try {
      slaves.set(n, await readdir(`${root}/${n}/slaves`))
    } catch {
      slaves.set(n, [])
    }
  }))
  return {
    exists: (n) => uuids.has(n),
    dmUuid: (n) => uuids.get(n) ?? null,
    slaves: (n) => slaves.get(n) ?? []
  }
}

export const realLinuxHost: LinuxHost = {
  run: runCommand,
  readText,
  sysfs: loadSysfs,
  realpath: async (p) => {
    try {
      await stat(p)
      return await realpath(p)
    } catch {
      return null
    }
  },
  env: process.env,
  kernel: release
}

interface Answer { value: Check; detail: string }

async function rootMount (host: LinuxHost): Promise<{ mount: RootMount | null; detail: string }> {
  const r = await host.run('findmnt', ['-n', '-P', '-o', 'SOURCE,FSTYPE', '/'])
  if (r.status === 'ok') {
    const m = parseFindmnt(r.stdout)
    if (m !== null) return { mount: m, detail: '' }
  }
  const mounts = await host.readText('/proc/self/mounts')
  const m = mounts === null ? null : parseProcMounts(mounts)
  return m === null
    ? { mount: null, detail: `${whyNot('findmnt', r)}; /proc/self/mounts has no / entry` }
    : { mount: m, detail: '' }
}

async function diskEncryption (host: LinuxHost, extra: Posture['extra']): Promise<Answer> {
  const { mount, detail } = await rootMount(host)
  if (mount === null) return { value: null, detail }
  extra.root_source = mount.source
  extra.root_fstype = mount.fstype
  if (mount.fstype === 'zfs') {
    const dataset = mount.source.replace(/\[[^\]]*\]$/, '')
    const r = await host.run('zfs', ['get', '-H', '-o', 'value', 'encryption', dataset])
    const v = r.status === 'ok' ? parseZfsEncryption(r.stdout) : null
    return v === null
      ? { value: null, detail: `root is ZFS ${dataset}; ${whyNot('zfs get encryption', r)}` }
      : { value: v, detail: `root is ZFS ${dataset}, encryption ${r.stdout.trim()}` }
  }
  if (mount.device === null) {
    return { value: null, detail: `root is ${mount.source} (${mount.fstype}), not on a local block device` }
  }
  const lsblk = await host.run('lsblk', ['-s', '-n', '-P', '-o', 'NAME,TYPE,FSTYPE', mount.device])
  const chain = lsblk.status === 'ok' ? parseLsblk(lsblk.stdout) : null
  if (chain !== null) {
    return { value: chain.encrypted, detail: `lsblk: root ${mount.device}: ${describeChain(chain)}${chain.encrypted ? '' : ' (no dm-crypt/LUKS layer)'}` }
  }
  // No (working) lsblk: follow device-mapper slaves in sysfs.
  const dev = await host.realpath(mount.device)
  const sys = await host.sysfs()
  const fromSys = dev === null ? null : cryptInSysfs(basename(dev), sys)
  if (fromSys !== null) {
    return { value: fromSys.encrypted, detail: `sysfs: root ${mount.device}: ${describeChain(fromSys)}${fromSys.encrypted ? '' : ' (no CRYPT- device-mapper layer)'}` }
  }
  return { value: null, detail: `root ${mount.device}: ${whyNot('lsblk', lsblk)}; not found in /sys/class/block` }
}

async function firewall (host: LinuxHost, extra: Posture['extra']): Promise<Answer> {
  const [nft, ufw, firewalld] = await Promise.all([
    host.run('nft', ['list', 'ruleset']),
    host.run('ufw', ['status']),
    host.run('firewall-cmd', ['--state'])
  ])
  const details: string[] = []
  const checks: Check[] = []

  if (nft.status === 'ok') {
    const v = parseNftRuleset(nft.stdout)
    checks.push(v.state === 'filtering')
    details.push(v.detail)
  } else {
    details.push(whyNot('nft', nft))
  }

  const ufwState = ufw.status === 'missing' ? null : parseUfwStatus(ufw.stdout)
  checks.push(ufwState)
  details.push(ufwState === null ? whyNot('ufw', ufw) : `ufw: ${ufwState ? 'active' : 'inactive'}`)

  // "not running" comes with exit code 252
  const fwd = firewalld.status === 'ok' || firewalld.status === 'failed' ? parseFirewalldState(firewalld.stdout) : null
  checks.push(fwd)
  details.push(fwd === null ? whyNot('firewall-cmd', firewalld) : `firewalld: ${fwd ? 'running' : 'not running'}`)

  const value = anyTrue(checks)
  if (value === true) {
    extra.firewall_source = [checks[0] === true ? 'nftables' : null, ufwState === true ? 'ufw' : null, fwd === true ? 'firewalld' : null]
      .filter((s) => s !== null).join(',')
  }
  return { value, detail: details.join('; ') }
}

function desktopOf (env: NodeJS.ProcessEnv): string {
  return env.XDG_CURRENT_DESKTOP ?? env.XDG_SESSION_DESKTOP ?? env.DESKTOP_SESSION ?? ''
}

async function screenLock (host: LinuxHost, extra: Posture['extra']): Promise<Answer> {
  const desktop = desktopOf(host.env)
  if (desktop !== '') extra.desktop = desktop
  if (/gnome|unity/i.test(desktop)) {
    const [enabled, delay, disabled] = await Promise.all([
      host.run('gsettings', ['get', 'org.gnome.desktop.screensaver', 'lock-enabled']),
      host.run('gsettings', ['get', 'org.gnome.desktop.session', 'idle-delay']),
      host.run('gsettings', ['get', 'org.gnome.desktop.lockdown', 'disable-lock-screen'])
    ])
    if (enabled.status !== 'ok') return { value: null, detail: whyNot('gsettings', enabled) }
    const g = gnomeScreenLock(
      parseGsettingsBool(enabled.stdout),
      delay.status === 'ok' ? parseGsettingsUint(delay.stdout) : null,
      disabled.status === 'ok' ? parseGsettingsBool(disabled.stdout) : null
    )
    return { value: g.lock, detail: g.detail }
  }
  if (/kde|plasma/i.test(desktop)) {
    const args = ['--file', 'kscreenlockerrc', '--group', 'Daemon', '--key', 'Autolock']
    let r = await host.run('kreadconfig6', args)
    if (r.status === 'missing') r = await host.run('kreadconfig5', args)
    const v = r.status === 'ok' ? parseKdeAutolock(r.stdout) : null
    return v === null
      ? { value: null, detail: whyNot('kreadconfig', r) }
      : { value: v, detail: `kscreenlockerrc: Autolock ${v ? 'on' : 'off'}` }
  }
  return {
    value: null,
    detail: desktop === ''
      ? 'no desktop session in this environment (XDG_CURRENT_DESKTOP unset)'
      : `screen lock of desktop ${desktop} is not detected`
  }
}

export async function collectLinux (host: LinuxHost = realLinuxHost): Promise<Posture> {
  const kernel = host.kernel()
  const extra: Posture['extra'] = { evidence: {}, kernel }
  const osRelease = (await host.readText('/etc/os-release')) ?? (await host.readText('/usr/lib/os-release'))
  if (osRelease !== null) {
    const o = parseOsRelease(osRelease)
    if (o.ID !== undefined) extra.os_id = o.ID
    if (o.NAME !== undefined) extra.os_name = o.NAME
    if (o.VERSION_ID !== undefined) extra.os_version_id = o.VERSION_ID
  }
  const [disk, fw, lock] = await Promise.all([diskEncryption(host, extra), firewall(host, extra), screenLock(host, extra)])
  extra.evidence.os_version = 'kernel release (uname -r)'
  extra.evidence.disk_encrypted = disk.detail
  extra.evidence.firewall = fw.detail
  extra.evidence.screen_lock = lock.detail
  return {
    os: 'linux',
    os_version: kernel,
    disk_encrypted: disk.value,
    screen_lock: lock.value,
    firewall: fw.value,
    extra
  }
}
