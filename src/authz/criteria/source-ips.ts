/**
 * `source_ips: [...]` — the client address (after trusted_proxies) is in one of the CIDRs.
 * An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack socket reports) is the
 * IPv4 address it carries, and a mapped CIDR in config is the IPv4 CIDR it carries.
 */
import { BlockList, isIP, isIPv4 } from 'node:net'
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { checkStrings, leaf, listOf } from './criterion.js'

const MAPPED_PREFIX = '::ffff:'

/** `a.b.c.d` for a dotted IPv4-mapped IPv6 address, else undefined. */
function unmapIPv4 (address: string): string | undefined {
  if (address.length > MAPPED_PREFIX.length && address.slice(0, MAPPED_PREFIX.length).toLowerCase() === MAPPED_PREFIX) {
    const v4 = address.slice(MAPPED_PREFIX.length)
    if (isIPv4(v4)) return v4
  }
  return undefined
}

/** Adds `cidr` (or a single address) to `list`; returns an error message or undefined. */
function addCidr (list: BlockList, cidr: string): string | undefined {
  const slash = cidr.indexOf('/')
  let address = slash === -1 ? cidr : cidr.slice(0, slash)
  const family = isIP(address)
  if (family === 0 || address.includes('%')) return `source_ips: "${cidr}" is not an IP address or CIDR`
  let max = family === 4 ? 32 : 128
  let prefix = max
  if (slash !== -1) {
    const text = cidr.slice(slash + 1)
    if (!/^\d{1,3}$/.test(text) || Number(text) > max) return `source_ips: "${cidr}" has an invalid prefix length (0-${max})`
    prefix = Number(text)
  }
  const v4 = family === 6 ? unmapIPv4(address) : undefined
  if (v4 !== undefined) {
    if (prefix < 96) return `source_ips: "${cidr}" covers more than the IPv4-mapped range; write an IPv6 or an IPv4 CIDR`
    address = v4
    prefix -= 96
    max = 32
  }
  list.addSubnet(address, prefix, max === 32 ? 'ipv4' : 'ipv6')
  return undefined
}

export function compileSourceIps (values: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(values, path, ctx, 'source_ips')) return undefined
  const list = new BlockList()
  let ok = true
  values.forEach((cidr, i) => {
    const error = addCidr(list, cidr.trim())
    if (error !== undefined) {
      ctx.errors.push({ path: [...path, i], message: error })
      ok = false
    }
  })
  if (!ok) return undefined
  return leaf({
    kind: 'subject',
    description: `from ${listOf(values)}`,
    test: (input) => {
      const ip = input.sourceIp
      const family = isIP(ip)
      if (family === 4) return list.check(ip, 'ipv4')
      if (family !== 6) return false
      const v4 = unmapIPv4(ip)
      return v4 !== undefined ? list.check(v4, 'ipv4') : list.check(ip, 'ipv6')
    },
    unmet: () => ({ code: 'source-ip-unauthorized', message: `only from ${listOf(values)}` })
  })
}
