/**
 * `POST /.moatless/device/report` on the authenticate origin: a device reports its posture
 * in a JWT it signs with its enrolled key (body `application/jwt`, at most 16 KiB):
 * iss = device id, aud = `<authenticate.url>/.moatless/device/report`, iat, exp <= iat + 5 min,
 * claim `posture`. 204 stored; 400 malformed; 401 unknown or revoked device, bad signature,
 * expired, future-dated, wrong audience, replayed; 503 when the store cannot be reached.
 *
 * Registered unwrapped (encapsulated), so that the `application/jwt` body parser exists for
 * this route only.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { sendJson } from '../pages.js'
import type { Store } from '../store/index.js'
import { CLOCK_SKEW_S, peek, verifyDeviceJwt } from './device-jwt.js'
import { parsePostureClaim } from './posture.js'
import type { TrustLevels } from './trust-levels.js'

export const REPORT_PATH = '/.moatless/device/report'

export interface DeviceReportOptions {
  store: Store
  levels: TrustLevels
  authenticateUrl: string
  log: Logger
  now?: () => number
}

export async function deviceReport (fastify: FastifyInstance, opts: DeviceReportOptions): Promise<void> {
  const audience = opts.authenticateUrl.replace(/\/+$/, '') + REPORT_PATH
  const now = opts.now ?? Date.now

  fastify.addContentTypeParser('application/jwt', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
    done(null, body)
  })

  fastify.post(REPORT_PATH, { config: { moatless: { internal: 'auth' } } }, async (req, reply) => {
    const at = now()
    // Another parser (JSON, ...) may have taken a body that is not ours.
    if (!isJwtMediaType(req.headers['content-type'])) {
      req.moatless.decision = { decision: 'deny', rule: 'device-report', reasons: ['the body must be application/jwt'] }
      return sendJson(reply, 415, { error: 'unsupported_media_type', reason: 'the body must be application/jwt', request_id: req.id })
    }
    const token = typeof req.body === 'string' ? req.body.trim() : ''
    const claimed = peek(token)
    if (!claimed.ok) return refuse(req, reply, 400, claimed.reason)
    const posture = parsePostureClaim(claimed.payload.posture, at)
    if (!posture.ok) return refuse(req, reply, 400, posture.reason)

    let record
    try {
      record = await opts.store.getDevice(claimed.iss)
    } catch {
      req.moatless.decision = { decision: 'deny', rule: 'store-unavailable', reasons: ['the device inventory cannot be reached'] }
      return sendJson(reply.header('retry-after', '5'), 503, { error: 'unavailable', request_id: req.id })
    }
    if (record === null) return refuse(req, reply, 401, 'unknown device')
    if (record.status !== 'active') return refuse(req, reply, 401, 'the device is revoked')
    const verified = await verifyDeviceJwt(token, claimed, record, { audience, now: at })
    if (!verified.ok) return refuse(req, reply, 401, verified.reason)

    try {
      const jti = verified.payload.jti
      if (typeof jti === 'string' && jti !== '') {
        // A resent report (the same token) is harmless; another report with this jti is a replay.
        const holder = createHash('sha256').update(token).digest('base64url')
        const ttl = (verified.payload.exp + CLOCK_SKEW_S) * 1000 - at
        if (await opts.store.claimOnce('device-report-jti', `${record.id}:${jti}`, holder, ttl) !== holder) {
          return refuse(req, reply, 401, 'the report id (jti) was already used')
        }
      }
      const updated = await opts.store.updateDevice(record.id, (cur) => cur.status !== 'active' ? cur : { ...cur, posture: posture.posture, updated_at: at })
      if (updated === null || updated.status !== 'active') return refuse(req, reply, 401, 'the device is revoked')
      req.moatless.device = opts.levels.grade(updated, at).device
    } catch (err) {
      opts.log.warn({ device_id: record.id, err: { message: (err as Error).message } }, 'device report: not stored')
      req.moatless.decision = { decision: 'deny', rule: 'store-unavailable', reasons: ['the device inventory cannot be reached'] }
      return sendJson(reply.header('retry-after', '5'), 503, { error: 'unavailable', request_id: req.id })
    }
    req.moatless.decision = { decision: 'allow', rule: 'device-report', reasons: [] }
    return reply.code(204).header('cache-control', 'no-store').send()
  })
}

function isJwtMediaType (value: string | undefined): boolean {
  return value !== undefined && value.split(';')[0]?.trim().toLowerCase() === 'application/jwt'
}

function refuse (req: FastifyRequest, reply: FastifyReply, status: 400 | 401, reason: string): FastifyReply {
  req.moatless.decision = { decision: 'deny', rule: 'device-report', reasons: [reason] }
  return sendJson(reply.header('cache-control', 'no-store'), status, {
    error: status === 400 ? 'invalid_report' : 'unauthorized_device',
    reason,
    request_id: req.id
  })
}
