/**
 * Pure parsers for what the Linux collector (linux.ts) reads. Each takes the text a command
 * printed (or a file held) and returns what it says, or `null` when it cannot tell; none of
 * them runs anything, so test/device-trust/agent/ feeds them recorded outputs.
 */
import type { Check } from './types.js'

// ---------------------------------------------------------------------------------------------
// /etc/os-release

/** os-release(5): KEY=value lines, values optionally quoted ("..." with \-escapes, or '...'). */
export function parseOsRelease (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (m === null) continue
    let value = m[2] ?? ''
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1).replace(/\\(["\\$`])/g, '$1')
    } else if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) {
      value = value.slice(1, -1)
    }
    out[m[1] as string] = value
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The root filesystem: findmnt, /proc/self/mounts, lsblk, sysfs, zfs

/**
 * `KEY="value" KEY2="value"` as printed by `findmnt -P` and `lsblk -P` (unsafe characters as
 * \xHH escapes).
 */
export function parsePairs (line: string): Record<string, string> {
  const out: Record<string, string> = {}
  const re = /([A-Za-z][A-Za-z0-9_:%-]*)="((?:[^"\\]|\\.)*)"/g
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    out[m[1] as string] = (m[2] ?? '').replace(/\\x([0-9a-fA-F]{2})/g, (_s, hex: string) => String.fromCharCode(parseInt(hex, 16)))
      .replace(/\\(.)/g, '$1')
  }
  return out
}

export interface RootMount {
  /** As the mount table has it: /dev/mapper/vg-root, /dev/nvme0n1p2[/@], rpool/ROOT/ubuntu, overlay. */
  source: string
  fstype: string
  /** The block device under it (btrfs subvolume suffix removed), or null when the source is not a /dev path. */
  device: string | null
}

function rootMount (source: string, fstype: string): RootMount {
  // btrfs (and bind) mounts show the subvolume or directory in brackets: /dev/sda2[/@]
  const path = source.replace(/\[[^\]]*\]$/, '')
  return { source, fstype, device: path.startsWith('/dev/') ? path : null }
}

/** `findmnt -n -P -o SOURCE,FSTYPE /` (or the plain `findmnt -no SOURCE,FSTYPE /`). */
export function parseFindmnt (text: string): RootMount | null {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '')
  if (line === undefined) return null
  if (line.includes('="')) {
    const p = parsePairs(line)
    if (p.SOURCE === undefined || p.SOURCE === '') return null
    return rootMount(p.SOURCE, p.FSTYPE ?? '')
  }
  const [source, fstype] = line.split(/\s+/)
  if (source === undefined || source === '') return null
  return rootMount(source, fstype ?? '')
}

/** /proc/self/mounts (fstab format, octal escapes): the last mount on `/` is the visible one. */
export function parseProcMounts (text: string): RootMount | null {
  let found: RootMount | null = null
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
  for (const line of text.split(/\r?\n/)) {
    const [source, target, fstype] = line.trim().split(/\s+/)
    if (source === undefined || target === undefined || fstype === undefined) continue
    if (unescape(target) === '/') found = rootMount(unescape(source), fstype)
  }
  return found
}

export interface BlockLayer { name: string; type: string; fstype: string }

export interface DiskChain {
  /** The device the root filesystem is on, then what it sits on, down to the disk. */
  layers: BlockLayer[]
  encrypted: boolean
}

const TREE_CHARS = /^[\s│├└─|`-]+/u

/**
 * `lsblk -s -n -P -o NAME,TYPE,FSTYPE DEV` (inverse: the device first, then what it is built
 * on), or the plain `lsblk -s -n -o TYPE,FSTYPE DEV`. Encrypted when a layer is dm-crypt
 * (TYPE crypt) or sits on a LUKS container (FSTYPE crypto_LUKS): the root filesystem is then
 * read through the decrypting mapping.
 */
export function parseLsblk (text: string): DiskChain | null {
  const layers: BlockLayer[] = []
  for (const raw of text.split(/\r?\n/)) {
    if (raw.trim() === '') continue
    if (raw.includes('="')) {
      const p = parsePairs(raw)
      if (p.TYPE === undefined) continue
      layers.push({ name: p.NAME ?? '', type: p.TYPE, fstype: p.FSTYPE ?? '' })
    } else {
      const [type, fstype] = raw.replace(TREE_CHARS, '').trim().split(/\s+/)
      if (type === undefined || type === '') continue
      layers.push({ name: '', type, fstype: fstype ?? '' })
    }
  }
  if (layers.length === 0) return null
  const encrypted = layers.some((l) => l.type === 'crypt' || l.fstype === 'crypto_LUKS')
  return { layers, encrypted }
}

export function describeChain (chain: DiskChain): string {
  return chain.layers.map((l) => {
    const what = l.fstype !== '' ? `${l.type}(${l.fstype})` : l.type
    return l.name !== '' ? `${l.name} ${what}` : what
  }).join(' <- ')
}

/** dm/uuid of a device-mapper device set up by cryptsetup: CRYPT-LUKS2-<uuid>-<name>, CRYPT-PLAIN-... */
export function isCryptDmUuid (uuid: string): boolean {
  return uuid.trim().startsWith('CRYPT-')
}

/** What the sysfs walk needs: /sys/class/block/NAME/dm/uuid and the entries of /sys/class/block/NAME/slaves. */
export interface BlockSysfs {
  exists: (name: string) => boolean
  dmUuid: (name: string) => string | null
  slaves: (name: string) => string[]
}

/**
 * Without lsblk: walks from the root's block device down through device-mapper `slaves/`
 * (LVM, RAID, dm-crypt) looking for a mapping whose dm/uuid says CRYPT-. null when the device
 * is not in sysfs at all.
 */
export function cryptInSysfs (name: string, sys: BlockSysfs): DiskChain | null {
  if (!sys.exists(name)) return null
  const layers: BlockLayer[] = []
  const seen = new Set<string>()
  const walk = (n: string): void => {
    if (seen.has(n) || seen.size > 64) return
    seen.add(n)
    const uuid = sys.dmUuid(n)
    const type = uuid === null ? 'block' : isCryptDmUuid(uuid) ? 'crypt' : 'dm'
    layers.push({ name: n, type, fstype: '' })
    for (const s of sys.slaves(n)) walk(s)
  }
  walk(name)
  return { layers, encrypted: layers.some((l) => l.type === 'crypt') }
}

/** `zfs get -H -o value encryption DATASET`: off, or the cipher (aes-256-gcm...). */
export function parseZfsEncryption (text: string): Check {
  const v = text.trim().split(/\s+/)[0] ?? ''
  if (v === 'off') return false
  if (/^aes-\d+-(gcm|ccm)$/.test(v) || v === 'on') return true
  return null
}

// ---------------------------------------------------------------------------------------------
// Firewall: nftables, ufw, firewalld

export interface NftChain {
  family: string
  table: string
  name: string
  hook: string | null
  policy: string | null
  rules: string[]
}

const QUOTED = /"(?:[^"\\]|\\.)*"/g

function unquote (s: string): string {
  return s.startsWith('"') && s.endsWith('"') && s.length >= 2 ? s.slice(1, -1) : s
}

/** The chains of `nft list ruleset` (text format), with their hook, policy and rule lines. */
export function parseNftChains (text: string): NftChain[] {
  const chains: NftChain[] = []
  let depth = 0
  let table: { family: string; name: string } | null = null
  let chain: NftChain | null = null
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    // Braces and comments are counted outside quoted strings only.
    const bare = line.replace(QUOTED, '""').replace(/#.*$/, '').trim()
    if (bare === '') continue
    if (depth === 0) {
      const m = /^table\s+(?:(ip|ip6|inet|arp|bridge|netdev)\s+)?("(?:[^"\\]|\\.)*"|\S+)\s*\{/.exec(line)
      table = m === null ? null : { family: m[1] ?? 'ip', name: unquote(m[2] as string) }
    } else if (depth === 1 && table !== null) {
      const m = /^chain\s+("(?:[^"\\]|\\.)*"|\S+)\s*\{/.exec(line)
      if (m !== null) {
        chain = { family: table.family, table: table.name, name: unquote(m[1] as string), hook: null, policy: null, rules: [] }
        chains.push(chain)
      }
    } else if (depth === 2 && chain !== null && bare !== '}') {
      if (/^type\s+\S+\s+hook\s/.test(bare)) {
        chain.hook = /\bhook\s+(\S+)/.exec(bare)?.[1]?.replace(/;$/, '') ?? null
        chain.policy = /\bpolicy\s+(\w+)/.exec(bare)?.[1] ?? null
      } else if (!/^(comment|devices|flags)\b/.test(bare)) {
        chain.rules.push(line)
      }
    }
    for (const ch of bare) {
      if (ch === '{') depth++
      else if (ch === '}') depth--
    }
    if (depth < 0) depth = 0
    if (depth < 2) chain = null
    if (depth < 1) table = null
  }
  return chains
}

function ruleTokens (rule: string): string[] {
  return rule.replace(QUOTED, '""').split(/[\s,{}:;]+/).filter((t) => t !== '')
}

export interface NftVerdict {
  /** filtering: an input chain drops or rejects something; open: it does not; empty: no ruleset at all. */
  state: 'filtering' | 'open' | 'empty'
  detail: string
}

/**
 * Does the nftables ruleset filter incoming traffic? "Non-empty" is not enough: Debian ships
 * an nftables.conf whose chains accept everything, and Docker alone fills the ruleset with
 * forward and nat chains. Filtering = an ip/ip6/inet chain on the `input` hook with policy
 * drop, or that reaches (directly or through jump/goto) a `drop` or `reject`. Covers nftables
 * rules written directly and those of iptables-nft, ufw and firewalld.
 */
export function parseNftRuleset (text: string): NftVerdict {
  const chains = parseNftChains(text)
  if (chains.length === 0) {
    return text.trim() === '' || !/\btable\b/.test(text)
      ? { state: 'empty', detail: 'nft: empty ruleset' }
      : { state: 'open', detail: 'nft: tables without chains' }
  }
  const byName = new Map(chains.map((c) => [`${c.family} ${c.table} ${c.name}`, c]))
  const verdictIn = (c: NftChain, seen: Set<NftChain>): string | null => {
    if (seen.has(c)) return null
    seen.add(c)
    for (const rule of c.rules) {
      const tokens = ruleTokens(rule)
      if (tokens.includes('drop') || tokens.includes('reject')) return tokens.includes('drop') ? 'drop' : 'reject'
      for (let i = 0; i < tokens.length - 1; i++) {
        if (tokens[i] !== 'jump' && tokens[i] !== 'goto') continue
        const target = byName.get(`${c.family} ${c.table} ${unquote(tokens[i + 1] as string)}`)
        if (target === undefined) continue
        const found = verdictIn(target, seen)
        if (found !== null) return `${found} in chain ${target.name}`
      }
    }
    return null
  }
  const inputs = chains.filter((c) => c.hook === 'input' && ['ip', 'ip6', 'inet'].includes(c.family))
  for (const c of inputs) {
    const where = `table ${c.family} ${c.table}, chain ${c.name}`
    if (c.policy === 'drop') return { state: 'filtering', detail: `nft: ${where}: policy drop` }
    const v = verdictIn(c, new Set())
    if (v !== null) return { state: 'filtering', detail: `nft: ${where}: ${v}` }
  }
  return inputs.length === 0
    ? { state: 'open', detail: 'nft: no chain on the input hook' }
    : { state: 'open', detail: `nft: input chain${inputs.length === 1 ? '' : 's'} ${inputs.map((c) => c.name).join(', ')} accept everything` }
}

/** `ufw status`: "Status: active" / "Status: inactive"; anything else (not root...) unknown. */
export function parseUfwStatus (text: string): Check {
  const m = /^Status:\s*(active|inactive)\b/m.exec(text)
  if (m === null) return null
  return m[1] === 'active'
}

/** `firewall-cmd --state`: "running" (exit 0) or "not running" (exit 252). */
export function parseFirewalldState (text: string): Check {
  const t = text.trim()
  if (t === 'running') return true
  if (t === 'not running') return false
  return null
}

// ---------------------------------------------------------------------------------------------
// Screen lock: GNOME (gsettings), KDE (kreadconfig)

/** `gsettings get SCHEMA KEY` for a boolean: "true" / "false". */
export function parseGsettingsBool (text: string): Check {
  const t = text.trim()
  if (t === 'true') return true
  if (t === 'false') return false
  return null
}

/** `gsettings get SCHEMA KEY` for a uint32: "uint32 300" (GVariant text format). */
export function parseGsettingsUint (text: string): number | null {
  const m = /^(?:uint32\s+)?(\d+)$/.exec(text.trim())
  return m === null ? null : Number(m[1])
}

/**
 * GNOME locks the screen when it blanks (session idle-delay seconds; 0 = never blanks) if
 * screensaver lock-enabled is on and lockdown disable-lock-screen is off.
 */
export function gnomeScreenLock (lockEnabled: Check, idleDelay: number | null, lockDisabled: Check): { lock: Check; detail: string } {
  if (lockDisabled === true) return { lock: false, detail: 'gsettings: org.gnome.desktop.lockdown disable-lock-screen is true' }
  if (lockEnabled === false) return { lock: false, detail: 'gsettings: org.gnome.desktop.screensaver lock-enabled is false' }
  if (idleDelay === 0) return { lock: false, detail: 'gsettings: org.gnome.desktop.session idle-delay is 0 (the screen never blanks)' }
  if (lockEnabled === true && idleDelay !== null) {
    return { lock: true, detail: `gsettings: lock-enabled is true, the screen blanks after ${idleDelay} s idle` }
  }
  return { lock: null, detail: 'gsettings: lock-enabled / idle-delay not readable' }
}

/** `kreadconfig5|6 --file kscreenlockerrc --group Daemon --key Autolock`: '' = unset = KDE's default, on. */
export function parseKdeAutolock (text: string): Check {
  const t = text.trim().toLowerCase()
  if (t === '' || t === 'true') return true
  if (t === 'false') return false
  return null
}
