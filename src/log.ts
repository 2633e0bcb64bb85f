import pino, { type DestinationStream, type Logger } from 'pino'

/**
 * pino, with redaction set up before the first line: cookies, authorization headers and any
 * token-like field are censored wherever they appear in a logged object.
 */
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-moatless-device"]', 'req.headers["x-client-cert"]',
  'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
  '*.authorization', '*.cookie', '*.token', '*.id_token', '*.access_token', '*.refresh_token', '*.client_secret',
  '*.secret', '*.code', '*.state', '*.nonce', '*.code_verifier', 'token', 'id_token', 'access_token', 'refresh_token',
  'client_secret', 'secret', 'code', 'state', 'nonce'
]

export function createLogger (opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino({
    level: opts.level ?? process.env.MOATLESS_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime
  }, opts.destination ?? pino.destination({ dest: 1, sync: false }))
}
