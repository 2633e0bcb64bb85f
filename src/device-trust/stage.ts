import type { TLSSocket } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Registry } from 'prom-client'
import { NO_DEVICE, addStage, type Identity, type RequestContext } from '../context.js'
import { CounterBy } from '../metrics.js'
import type { ClientCertificates } from './client-cert.js'
import type { DeviceEvidence, DeviceTrust } from './device-trust.js'

export interface DeviceStageOptions {
  devices: DeviceTrust
  /** Present when `listen.tls.client_ca` is configured: client certificates name devices. */
  certificates: ClientCertificates | null
  /** Where the per-trust-level request counter is registered (the admin /metrics registry). */
  registry?: Registry
}

/**
 * Stage 3: which device the request comes from and how far it is trusted (device-trust.ts).
 * Only for app requests with a signed-in user: a device counts only as its owner's, so without
 * a user there is nothing to grade, and such a request costs nothing here. A request without
 * any device evidence is trust `none` at once.
 */
export const deviceStage = fp(async function deviceStage (fastify: FastifyInstance, opts: DeviceStageOptions) {
  const byTrust = new CounterBy(opts.registry, {
    name: 'moatless_device_trust_requests_total',
    help: 'Requests of signed-in users to apps, by the trust level of the device they came from',
    labelName: 'trust'
  })
  const certs = opts.certificates

  const identify = async (ctx: RequestContext, evidence: DeviceEvidence, identity: Identity): Promise<void> => {
    const device = await opts.devices.identify(evidence, identity)
    if (device === 'unavailable') {
      ctx.unavailable = true
      ctx.decision = { decision: 'deny', rule: 'store-unavailable', reasons: ['the device inventory cannot be reached'] }
      return
    }
    ctx.device = device
    byTrust.inc(device.trust)
  }

  addStage(fastify, (req) => {
    const ctx = req.moatless
    ctx.device = NO_DEVICE
    if (ctx.site !== 'app' || ctx.app === null || ctx.unavailable || ctx.identity === null || ctx.internal !== null) return
    const headers = req.headers
    const socket = req.raw.socket as TLSSocket
    const socketFingerprint = certs !== null && socket.encrypted === true ? certs.fromSocket(socket) : null
    // Exactly one X-Client-Cert: a load balancer that appends instead of replacing would let a
    // client's own value ride along (Node joins duplicates), so two of them count as none.
    const forwarded = ctx.peerTrusted && countHeader(req.raw.rawHeaders, 'x-client-cert') === 1 ? headers['x-client-cert'] : undefined
    const token = headers['x-moatless-device']
    if (socketFingerprint === null && forwarded === undefined && token === undefined) {
      byTrust.inc('none')
      return
    }
    return identify(ctx, {
      socketFingerprint,
      forwardedCert: typeof forwarded === 'string' ? forwarded : undefined,
      token: typeof token === 'string' ? token : undefined
    }, ctx.identity)
  })
}, { name: 'moatless-device-trust', fastify: '5.x', dependencies: ['moatless-authn'] })

function countHeader (raw: string[], name: string): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === name.length && (raw[i] as string).toLowerCase() === name) n++
  return n
}
