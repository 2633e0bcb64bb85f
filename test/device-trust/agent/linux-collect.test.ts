/**
 * The Linux collector: for real on this machine (well-formed answer, whatever the machine's
 * settings), and on fake machines for the decisions it makes from what it finds.
 */
import t, { type Test } from 'tap'
import { release } from 'node:os'
import { collectPosture } from '../../../src/device-trust/agent/collect.js'
import { collectLinux, realLinuxHost, type LinuxHost } from '../../../src/device-trust/agent/linux.js'
import { postureClaim, type Posture } from '../../../src/device-trust/agent/types.js'
import type { BlockSysfs } from '../../../src/device-trust/agent/linux-parse.js'
import { failed, fakeRunner, fixture, ok } from './helpers.js'
import type { CommandResult } from '../../../src/device-trust/agent/exec.js'

const f = (name: string): string => fixture('linux', name)

function assertShape (t: Test, p: Posture): void {
  t.same(Object.keys(p).sort(), ['disk_encrypted', 'extra', 'firewall', 'os', 'os_version', 'screen_lock'])
  for (const k of ['disk_encrypted', 'screen_lock', 'firewall'] as const) {
    t.ok(p[k] === true || p[k] === false || p[k] === null, `${k} is boolean or null`)
    t.type(p.extra.evidence[k], 'string', `evidence for ${k}`)
  }
  t.type(p.os_version, 'string')
}

t.test('on this machine, for real', { skip: process.platform !== 'linux' && 'not Linux' }, async (t) => {
  const started = Date.now()
  const p = await collectPosture()
  t.ok(Date.now() - started < 15_000, 'collected in reasonable time')
  assertShape(t, p)
  t.equal(p.os, 'linux')
  t.equal(p.os_version, release(), 'os_version is the kernel release')
  t.equal(p.extra.kernel, release())
  t.type(p.extra.os_name, 'string', 'os-release NAME in extra')
  const claim = postureClaim(p)
  t.equal(claim.os, 'linux')
  for (const k of ['disk_encrypted', 'screen_lock', 'firewall'] as const) {
    t.equal(k in claim, p[k] !== null, `${k} is in the claim exactly when known`)
  }
  t.same(Object.keys(claim.extra).at(-1), 'evidence', 'evidence comes last')
  t.doesNotThrow(() => JSON.stringify(claim))
})

const noSysfs: BlockSysfs = { exists: () => false, dmUuid: () => null, slaves: () => [] }

function host (answers: Record<string, CommandResult>, overrides: Partial<LinuxHost> = {}): LinuxHost & { run: ReturnType<typeof fakeRunner> } {
  return {
    ...realLinuxHost,
    run: fakeRunner(answers),
    readText: async (path) => path === '/etc/os-release' ? f('os-release-ubuntu-24.04.txt') : null,
    sysfs: async () => noSysfs,
    realpath: async () => null,
    env: {},
    kernel: () => '6.8.0-45-generic',
    ...overrides
  } as LinuxHost & { run: ReturnType<typeof fakeRunner> }
}

const FINDMNT = 'findmnt -n -P -o SOURCE,FSTYPE /'

t.test('an Ubuntu laptop: LVM on LUKS, ufw active, GNOME locking', async (t) => {
  const h = host({
    [FINDMNT]: ok(f('findmnt-ubuntu-lvm.txt')),
    'lsblk -s -n -P -o NAME,TYPE,FSTYPE /dev/mapper/vgubuntu-root': ok(f('lsblk-ubuntu-lvm-on-luks.txt')),
    'nft list ruleset': ok(f('nft-ufw-iptables-nft.txt')),
    'ufw status': ok(f('ufw-active.txt')),
    'gsettings get org.gnome.desktop.screensaver lock-enabled': ok('true\n'),
    'gsettings get org.gnome.desktop.session idle-delay': ok('uint32 300\n'),
    'gsettings get org.gnome.desktop.lockdown disable-lock-screen': ok('false\n')
  }, { env: { XDG_CURRENT_DESKTOP: 'ubuntu:GNOME' } })
  const p = await collectLinux(h)
  assertShape(t, p)
  t.same([p.os, p.os_version, p.disk_encrypted, p.firewall, p.screen_lock], ['linux', '6.8.0-45-generic', true, true, true])
  t.match(p.extra, { os_id: 'ubuntu', os_name: 'Ubuntu', os_version_id: '24.04', root_source: '/dev/mapper/vgubuntu-root', firewall_source: 'nftables,ufw', desktop: 'ubuntu:GNOME' })
  t.match(p.extra.evidence.disk_encrypted, /dm_crypt-0 crypt/)
})

t.test('a server as a normal user: nothing encrypted, firewall and screen lock unknown', async (t) => {
  const h = host({
    [FINDMNT]: ok(f('findmnt-plain-ext4.txt')),
    'lsblk -s -n -P -o NAME,TYPE,FSTYPE /dev/vda': ok(f('lsblk-plain-disk.txt')),
    'nft list ruleset': failed(f('nft-not-root.stderr.txt')),
    'ufw status': failed(f('ufw-not-root.stderr.txt'))
  })
  const p = await collectLinux(h)
  t.same([p.disk_encrypted, p.firewall, p.screen_lock], [false, null, null])
  t.match(p.extra.evidence.firewall, /nft: failed \(exit 1\): Operation not permitted/)
  t.match(p.extra.evidence.firewall, /ufw: failed \(exit 1\): ERROR: You need to be root/)
  t.match(p.extra.evidence.screen_lock, /no desktop session/)
  t.notOk(h.run.calls.some((c) => c.startsWith('gsettings')), 'gsettings is not asked outside a GNOME session (it would show schema defaults)')
  const claim = postureClaim(p)
  t.notOk('firewall' in claim, 'unknown firewall left out of the claim')
  t.notOk('screen_lock' in claim)
  t.equal(claim.disk_encrypted, false)
})

t.test('Debian default nftables.conf and firewalld not running: firewall off', async (t) => {
  const p = await collectLinux(host({
    'nft list ruleset': ok(f('nft-debian-default.txt')),
    'firewall-cmd --state': failed('', 252, f('firewall-cmd-not-running.txt'))
  }))
  t.equal(p.firewall, false)
  t.match(p.extra.evidence.firewall, /accept everything.*firewalld: not running/)
})

t.test('Fedora: btrfs on LUKS; firewalld running', async (t) => {
  const p = await collectLinux(host({
    [FINDMNT]: ok(f('findmnt-fedora-btrfs.txt')),
    'lsblk -s -n -P -o NAME,TYPE,FSTYPE /dev/mapper/luks-4b1e2c3a-8f0d-4c7e-9a51-2d6f0e7b3c19': ok(f('lsblk-fedora-btrfs-luks.txt')),
    'nft list ruleset': ok(f('nft-firewalld-like.txt')),
    'firewall-cmd --state': ok(f('firewall-cmd-running.txt'))
  }))
  t.same([p.disk_encrypted, p.firewall], [true, true])
  t.equal(p.extra.firewall_source, 'nftables,firewalld')
})

t.test('no findmnt, no lsblk: /proc/self/mounts and the sysfs walk', async (t) => {
  const sys: BlockSysfs = {
    exists: (n) => ['dm-1', 'dm-0', 'nvme0n1p3'].includes(n),
    dmUuid: (n) => ({ 'dm-1': 'LVM-xyz', 'dm-0': 'CRYPT-LUKS2-abc-dm_crypt-0' } as Record<string, string>)[n] ?? null,
    slaves: (n) => ({ 'dm-1': ['dm-0'], 'dm-0': ['nvme0n1p3'] } as Record<string, string[]>)[n] ?? []
  }
  const p = await collectLinux(host({}, {
    readText: async (path) => path === '/proc/self/mounts' ? f('proc-mounts-host.txt') : null,
    realpath: async (path) => path === '/dev/mapper/vgubuntu-root' ? '/dev/dm-1' : null,
    sysfs: async () => sys
  }))
  t.equal(p.disk_encrypted, true)
  t.match(p.extra.evidence.disk_encrypted, /^sysfs: root \/dev\/mapper\/vgubuntu-root: dm-1 dm <- dm-0 crypt/)
  t.equal(p.extra.os_name, undefined, 'no os-release: nothing invented')
})

t.test('ZFS root and a container root', async (t) => {
  const zfs = await collectLinux(host({
    [FINDMNT]: ok(f('findmnt-zfs.txt')),
    'zfs get -H -o value encryption rpool/ROOT/ubuntu_k3x9qz': ok(f('zfs-encryption-on.txt'))
  }))
  t.equal(zfs.disk_encrypted, true)
  t.match(zfs.extra.evidence.disk_encrypted, /aes-256-gcm/)

  const container = await collectLinux(host({ [FINDMNT]: ok(f('findmnt-container-overlay.txt')) }))
  t.equal(container.disk_encrypted, null, 'overlay: cannot tell')
  t.match(container.extra.evidence.disk_encrypted, /overlay.*not on a local block device/)
})

t.test('KDE: Autolock', async (t) => {
  const p = await collectLinux(host({
    'kreadconfig5 --file kscreenlockerrc --group Daemon --key Autolock': ok('false\n')
  }, { env: { XDG_CURRENT_DESKTOP: 'KDE' } }))
  t.equal(p.screen_lock, false)
  t.match(p.extra.evidence.screen_lock, /Autolock off/)
})

t.test('commands that hang are cut off, not waited for', async (t) => {
  const slow = host({})
  const run = slow.run
  slow.run = Object.assign(async (cmd: string, args: string[]) => {
    if (cmd === 'nft') return { status: 'timeout', code: null, stdout: '', stderr: '' } as CommandResult
    return run(cmd, args)
  }, { calls: run.calls })
  const p = await collectLinux(slow)
  t.equal(p.firewall, null)
  t.match(p.extra.evidence.firewall, /nft: timed out/)
})
