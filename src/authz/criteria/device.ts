/**
 * `device: { trust: LEVEL }` — the device is at least at LEVEL ('none' is rank 0, the
 * configured levels 1..n, lowest first); `device: { ids: [...] }` — one of these devices.
 * Both keys given: both must hold.
 */
import type { DeviceContext } from '../../context.js'
import type { CompileContext, ConfigPath, Criterion, Unmet } from '../types.js'
import { checkStrings, leaf, oneOf } from './criterion.js'

interface DeviceCondition { trust?: string | undefined; ids?: string[] | undefined }

function why (device: DeviceContext): string {
  return device.reasons.length > 0 ? `: ${device.reasons.join(', ')}` : ''
}

function compileTrust (level: string, path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  const rank = ctx.levelRanks.get(level)
  if (rank === undefined) {
    ctx.errors.push({ path, message: `unknown device trust level "${level}" (levels: ${ctx.levels.join(', ')})` })
    return undefined
  }
  return leaf({
    kind: 'subject',
    description: `on a device at level ${level} or higher`,
    test: (input) => input.device.trustRank >= rank,
    unmet: ({ device }): Unmet => device.id === null
      ? { code: 'device-unauthenticated', message: `needs a device at level ${level}; no device was identified${why(device)}` }
      : { code: 'device-unauthorized', message: `needs a device at level ${level}; this device is ${device.trust}${why(device)}` },
    matched: ({ device }) => `on a device at level ${device.trust}`
  })
}

function compileIds (ids: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(ids, path, ctx, 'device.ids')) return undefined
  const wanted = new Set(ids)
  const text = oneOf('device', 'devices', ids)
  return leaf({
    kind: 'subject',
    description: `on ${text}`,
    test: (input) => input.device.id !== null && wanted.has(input.device.id),
    unmet: ({ device }): Unmet => device.id === null
      ? { code: 'device-unauthenticated', message: `needs ${text}; no device was identified` }
      : { code: 'device-unauthorized', message: `needs ${text}; this device is ${device.id}` },
    matched: ({ device }) => `on device ${device.id ?? ''}`
  })
}

export function compileDevice (value: DeviceCondition, path: ConfigPath, ctx: CompileContext): Criterion[] | undefined {
  if (value.trust === undefined && value.ids === undefined) {
    ctx.errors.push({ path, message: 'device: an empty device condition matches every request by accident; give trust or ids' })
    return undefined
  }
  const compiled: Criterion[] = []
  let ok = true
  if (value.trust !== undefined) {
    const c = compileTrust(value.trust, [...path, 'trust'], ctx)
    if (c === undefined) ok = false
    else compiled.push(c)
  }
  if (value.ids !== undefined) {
    const c = compileIds(value.ids, [...path, 'ids'], ctx)
    if (c === undefined) ok = false
    else compiled.push(c)
  }
  return ok ? compiled : undefined
}
