/**
 * Throwaway X.509 material for tests: a CA, server certificates for test host names, client
 * certificates for device identity; valid for two days. The issuing code is the demo's
 * (src/demo/pki.ts); nothing is written outside temp dirs that are removed.
 */
import { createCa, type CertificateAuthority } from '../../src/demo/pki.js'

export { fingerprintOf, type IssuedCert, type IssueOptions } from '../../src/demo/pki.js'

export type TestCa = CertificateAuthority

export async function createTestCa (name = 'Moatless Test CA'): Promise<TestCa> {
  return await createCa(name, { days: 2 })
}
