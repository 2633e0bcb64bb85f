/** The Linux parsers on recorded outputs (test/fixtures/agent/linux/). */
import t from 'tap'
import {
  cryptInSysfs, describeChain, gnomeScreenLock, parseFindmnt, parseFirewalldState, parseGsettingsBool,
  parseGsettingsUint, parseKdeAutolock, parseLsblk, parseNftChains, parseNftRuleset, parseOsRelease,
  parsePairs, parseProcMounts, parseUfwStatus, parseZfsEncryption, type BlockSysfs
} from '../../../src/device-trust/agent/linux-parse.js'
import { fixture } from './helpers.js'

const f = (name: string): string => fixture('linux', name)

t.test('os-release', async (t) => {
  const debian = parseOsRelease(f('os-release-debian-12.txt'))
  t.equal(debian.NAME, 'Debian GNU/Linux')
  t.equal(debian.VERSION_ID, '12')
  t.equal(debian.ID, 'debian')
  t.equal(debian.PRETTY_NAME, 'Debian GNU/Linux 12 (bookworm)')

  const ubuntu = parseOsRelease(f('os-release-ubuntu-24.04.txt'))
  t.equal(ubuntu.NAME, 'Ubuntu')
  t.equal(ubuntu.VERSION_ID, '24.04')
  t.equal(ubuntu.ID_LIKE, 'debian')

  const fedora = parseOsRelease(f('os-release-fedora-40.txt'))
  t.equal(fedora.NAME, 'Fedora Linux')
  t.equal(fedora.VERSION_ID, '40', 'unquoted value')
  t.equal(fedora.VERSION_CODENAME, '', 'empty quoted value')
  t.equal(fedora.ANSI_COLOR, '0;38;2;60;110;180')

  const arch = parseOsRelease(f('os-release-arch.txt'))
  t.equal(arch.NAME, 'Arch Linux')
  t.equal(arch.VERSION_ID, undefined, 'rolling release: no VERSION_ID')

  t.same(parseOsRelease('# comment\nNAME=\'single quoted\'\nX="a \\"b\\" \\$c"\nbroken line\n'), { NAME: 'single quoted', X: 'a "b" $c' })
})

t.test('findmnt and /proc/self/mounts: the root filesystem', async (t) => {
  t.same(parseFindmnt(f('findmnt-plain-ext4.txt')), { source: '/dev/vda', fstype: 'ext4', device: '/dev/vda' })
  t.same(parseFindmnt(f('findmnt-ubuntu-lvm.txt')), { source: '/dev/mapper/vgubuntu-root', fstype: 'ext4', device: '/dev/mapper/vgubuntu-root' })
  t.same(parseFindmnt(f('findmnt-fedora-btrfs.txt')), {
    source: '/dev/mapper/luks-4b1e2c3a-8f0d-4c7e-9a51-2d6f0e7b3c19[/root]',
    fstype: 'btrfs',
    device: '/dev/mapper/luks-4b1e2c3a-8f0d-4c7e-9a51-2d6f0e7b3c19'
  }, 'btrfs subvolume suffix dropped from the device')
  t.same(parseFindmnt(f('findmnt-zfs.txt')), { source: 'rpool/ROOT/ubuntu_k3x9qz', fstype: 'zfs', device: null })
  t.same(parseFindmnt(f('findmnt-container-overlay.txt')), { source: 'overlay', fstype: 'overlay', device: null })
  t.same(parseFindmnt(f('findmnt-no-pairs.txt')), { source: '/dev/mapper/vgubuntu-root', fstype: 'ext4', device: '/dev/mapper/vgubuntu-root' })
  t.equal(parseFindmnt(''), null)

  t.same(parseProcMounts(f('proc-mounts-host.txt')), { source: '/dev/mapper/vgubuntu-root', fstype: 'ext4', device: '/dev/mapper/vgubuntu-root' })
  t.same(parseProcMounts(f('proc-mounts-container.txt')), { source: 'overlay', fstype: 'overlay', device: null })
  t.equal(parseProcMounts('proc /proc proc rw 0 0\n'), null)
  t.same(parsePairs('NAME="a\\x20b" TYPE="crypt"'), { NAME: 'a b', TYPE: 'crypt' }, 'lsblk hex escapes')
})

t.test('lsblk: is the root on dm-crypt/LUKS', async (t) => {
  const plain = parseLsblk(f('lsblk-plain-disk.txt'))
  t.same(plain, { layers: [{ name: 'vda', type: 'disk', fstype: '' }], encrypted: false })

  const ubuntu = parseLsblk(f('lsblk-ubuntu-lvm-on-luks.txt'))
  t.equal(ubuntu?.encrypted, true)
  t.same(ubuntu?.layers.map((l) => l.type), ['lvm', 'crypt', 'part', 'disk'])
  t.equal(describeChain(ubuntu!), 'vgubuntu-root lvm(ext4) <- dm_crypt-0 crypt(LVM2_member) <- nvme0n1p3 part(crypto_LUKS) <- nvme0n1 disk')

  t.equal(parseLsblk(f('lsblk-ubuntu-lvm-no-crypt.txt'))?.encrypted, false, 'LVM without LUKS')
  t.equal(parseLsblk(f('lsblk-fedora-btrfs-luks.txt'))?.encrypted, true)
  t.equal(parseLsblk(f('lsblk-partition-ext4.txt'))?.encrypted, false)

  const columns = parseLsblk(f('lsblk-plain-columns-crypt.txt'))
  t.equal(columns?.encrypted, true, 'TYPE,FSTYPE column form')
  t.same(columns?.layers.map((l) => [l.type, l.fstype]), [['lvm', 'ext4'], ['crypt', 'LVM2_member'], ['part', 'crypto_LUKS'], ['disk', '']])
  const tree = parseLsblk(f('lsblk-plain-columns-tree.txt'))
  t.same(tree?.layers.map((l) => l.type), ['part', 'disk'], 'tree characters stripped')
  t.equal(tree?.encrypted, false)

  t.equal(parseLsblk(''), null)
})

t.test('sysfs walk (no lsblk): device-mapper slaves and CRYPT- uuids', async (t) => {
  // Ubuntu LVM on LUKS: dm-1 (LV) on dm-0 (crypt) on nvme0n1p3
  const tree: Record<string, { uuid?: string; slaves?: string[] }> = {
    'dm-1': { uuid: 'LVM-abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefABCDEF01\n', slaves: ['dm-0'] },
    'dm-0': { uuid: 'CRYPT-LUKS2-2b1a9e6c4d3f4e8a9b7c6d5e4f3a2b1c-dm_crypt-0\n', slaves: ['nvme0n1p3'] },
    nvme0n1p3: {},
    'dm-2': { uuid: 'LVM-plainplainplain', slaves: ['sda2'] },
    sda2: {}
  }
  const sys: BlockSysfs = {
    exists: (n) => n in tree,
    dmUuid: (n) => tree[n]?.uuid ?? null,
    slaves: (n) => tree[n]?.slaves ?? []
  }
  const enc = cryptInSysfs('dm-1', sys)
  t.equal(enc?.encrypted, true)
  t.same(enc?.layers.map((l) => `${l.name}:${l.type}`), ['dm-1:dm', 'dm-0:crypt', 'nvme0n1p3:block'])
  t.equal(cryptInSysfs('dm-2', sys)?.encrypted, false)
  t.equal(cryptInSysfs('sda2', sys)?.encrypted, false)
  t.equal(cryptInSysfs('root', sys), null, 'not in sysfs: unknown')
})

t.test('zfs native encryption', async (t) => {
  t.equal(parseZfsEncryption(f('zfs-encryption-on.txt')), true)
  t.equal(parseZfsEncryption(f('zfs-encryption-off.txt')), false)
  t.equal(parseZfsEncryption('cannot open \'x\': dataset does not exist'), null)
})

t.test('nftables: does an input chain filter', async (t) => {
  const cases: Array<[string, 'filtering' | 'open' | 'empty', RegExp]> = [
    ['nft-empty.txt', 'empty', /empty ruleset/],
    ['nft-debian-default.txt', 'open', /input chain input accept everything/],
    ['nft-host-firewall.txt', 'filtering', /table inet filter, chain input: policy drop/],
    ['nft-firewalld-like.txt', 'filtering', /table inet firewalld, chain filter_INPUT: drop/],
    ['nft-ufw-iptables-nft.txt', 'filtering', /table ip filter, chain INPUT: policy drop/],
    ['nft-docker-only.txt', 'open', /no chain on the input hook/],
    ['nft-accept-jump-only.txt', 'open', /accept everything/]
  ]
  for (const [name, state, detail] of cases) {
    const v = parseNftRuleset(f(name))
    t.equal(v.state, state, name)
    t.match(v.detail, detail, name)
  }

  const host = parseNftChains(f('nft-host-firewall.txt'))
  t.same(host.map((c) => [c.family, c.table, c.name, c.hook, c.policy, c.rules.length]), [
    ['inet', 'filter', 'input', 'input', 'drop', 9],
    ['inet', 'filter', 'forward', 'forward', 'drop', 0]
  ], 'set blocks (multi-line elements) are skipped; rules counted')

  const fw = parseNftChains(f('nft-firewalld-like.txt'))
  t.same(fw.map((c) => c.name), ['filter_INPUT', 'filter_INPUT_ZONES', 'filter_IN_public', 'filter_IN_public_allow'])

  // a reject reached only through jump → goto
  const nested = `table inet t {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tjump zones
\t}
\tchain zones {
\t\tiifname "eth0" goto public
\t}
\tchain public {
\t\ttcp dport 22 accept comment "drop { this } is a comment"
\t\treject with icmpx admin-prohibited
\t}
}
`
  t.same(parseNftRuleset(nested), { state: 'filtering', detail: 'nft: table inet t, chain input: reject in chain public in chain zones' })
  // "drop" inside a comment or a set name is not a verdict
  const notVerdict = `table inet t {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tip saddr @drop-list counter comment "would drop later"
\t}
}
`
  t.equal(parseNftRuleset(notVerdict).state, 'open')
  // an arp/bridge input chain is not an IP firewall
  t.equal(parseNftRuleset('table arp a {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n').state, 'open')
})

t.test('ufw and firewalld', async (t) => {
  t.equal(parseUfwStatus(f('ufw-active.txt')), true)
  t.equal(parseUfwStatus(f('ufw-inactive.txt')), false)
  t.equal(parseUfwStatus(f('ufw-not-root.stderr.txt')), null)
  t.equal(parseUfwStatus(''), null)
  t.equal(parseFirewalldState(f('firewall-cmd-running.txt')), true)
  t.equal(parseFirewalldState(f('firewall-cmd-not-running.txt')), false)
  t.equal(parseFirewalldState('Authorization failed.'), null)
})

t.test('GNOME and KDE screen lock', async (t) => {
  t.equal(parseGsettingsBool('true\n'), true)
  t.equal(parseGsettingsBool('false\n'), false)
  t.equal(parseGsettingsBool('No such schema “org.gnome.desktop.screensaver”\n'), null)
  t.equal(parseGsettingsUint('uint32 300\n'), 300)
  t.equal(parseGsettingsUint('uint32 0\n'), 0)
  t.equal(parseGsettingsUint('nonsense'), null)

  t.equal(gnomeScreenLock(true, 300, false).lock, true)
  t.equal(gnomeScreenLock(true, 300, null).lock, true, 'lockdown key unreadable: lock-enabled decides')
  t.equal(gnomeScreenLock(false, 300, false).lock, false)
  t.equal(gnomeScreenLock(true, 0, false).lock, false, 'never blanks, never locks')
  t.equal(gnomeScreenLock(true, 300, true).lock, false, 'lock screen disabled by lockdown')
  t.equal(gnomeScreenLock(null, 300, null).lock, null)
  t.equal(gnomeScreenLock(true, null, null).lock, null)

  t.equal(parseKdeAutolock('\n'), true, 'unset = KDE default (on)')
  t.equal(parseKdeAutolock('true\n'), true)
  t.equal(parseKdeAutolock('false\n'), false)
  t.equal(parseKdeAutolock('whatever'), null)
})
