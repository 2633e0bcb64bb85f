/**
 * The one registry of Moatless errors. Match on `code`, never on message text.
 * Each code maps to the HTTP status the proxy answers with; docs/errors.md lists them
 * and test/errors.test.ts keeps the two in step.
 */
export const ERRORS = {
  MOATLESS_ERR_BAD_REQUEST: { status: 400, message: 'malformed request' },
  MOATLESS_ERR_UNAUTHENTICATED: { status: 401, message: 'no valid session or token' },
  MOATLESS_ERR_FORBIDDEN: { status: 403, message: 'denied by policy' },
  MOATLESS_ERR_UNKNOWN_HOST: { status: 404, message: 'no app is configured for this host' },
  MOATLESS_ERR_NOT_FOUND: { status: 404, message: 'not found' },
  MOATLESS_ERR_MISDIRECTED: { status: 421, message: 'TLS server name does not match the Host header' },
  MOATLESS_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request headers too large' },
  MOATLESS_ERR_SIGN_IN_FAILED: { status: 400, message: 'sign-in could not be completed' },
  MOATLESS_ERR_UPSTREAM_UNREACHABLE: { status: 502, message: 'the upstream app could not be reached' },
  MOATLESS_ERR_STORE_UNAVAILABLE: { status: 503, message: 'the session store is unavailable' },
  MOATLESS_ERR_IDP_UNAVAILABLE: { status: 503, message: 'the identity provider is unavailable' },
  MOATLESS_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'the upstream app did not answer in time' },
  MOATLESS_ERR_CONFIG: { status: 500, message: 'invalid configuration' }
} as const

export type MoatlessErrorCode = keyof typeof ERRORS

export class MoatlessError extends Error {
  readonly code: MoatlessErrorCode
  readonly statusCode: number
  constructor (code: MoatlessErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERRORS[code].message, options)
    this.name = 'MoatlessError'
    this.code = code
    this.statusCode = ERRORS[code].status
  }
}

export function isMoatlessError (err: unknown): err is MoatlessError {
  return err instanceof MoatlessError
}
