import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { NO_DEVICE } from '../context.js'

/**
 * Stage 3: which device the request comes from and how far it is trusted. Until device
 * identity (client certificates, device tokens) and posture are in place, every request is
 * from an unidentified device: trust level `none`.
 */
export const deviceStage = fp(async function deviceStage (fastify: FastifyInstance) {
  fastify.addHook('onRequest', async (req) => {
    req.moatless.device = NO_DEVICE
  })
}, { name: 'moatless-device-trust', fastify: '5.x', dependencies: ['moatless-authn'] })
