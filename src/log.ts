import pino, { type DestinationStream, type Logger } from 'pino'

/**
 * pino, with redaction set up before the first line: cookies, authorization headers and any
 * token-like field are censored wherever they appear in a logged object.
 */
export const REDACT_PATHS = [
  // Request/response objects, should anything ever log one (fastify's serializers, errors).
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-moatless-device"]', 'req.headers["x-client-cert"]',
  'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
  // Token-like fields at the top level of a log object. (No `*.` wildcards: redaction runs on
  // every line, and the decision line is written for every request.)
  'authorization', 'cookie', 'token', 'tokens', 'id_token', 'access_token', 'refresh_token', 'logout_token',
  'client_secret', 'secret', 'code', 'state', 'nonce', 'code_verifier'
]

export function createLogger (opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino({
    level: opts.level ?? process.env.MOATLESS_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime
  }, opts.destination ?? pino.destination({ dest: 1, sync: false }))
}
