/**
 * Throwaway X.509 material for tests: a CA, server certificates for test host names, client
 * certificates for device identity. Made with the openssl CLI (Node cannot issue certificates),
 * EC P-256 keys, valid for two days; nothing is written outside a temp dir that is removed.
 */
import { execFile } from 'node:child_process'
import { X509Certificate, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface IssuedCert {
  /** PEM */
  cert: string
  /** PEM (PKCS#8) */
  key: string
  /** Lowercase hex SHA-256 of the DER, no colons: the device fingerprint Moatless uses. */
  fingerprint: string
}

export interface IssueOptions {
  commonName: string
  /** subjectAltName DNS names (server certificates). */
  dns?: string[]
  /** subjectAltName IP addresses (server certificates). */
  ips?: string[]
  /** 'server' (default) or 'client' (extendedKeyUsage clientAuth). */
  usage?: 'server' | 'client'
}

export interface TestCa {
  /** PEM of the CA certificate. */
  cert: string
  key: string
  issue(opts: IssueOptions): Promise<IssuedCert>
}

export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase()
}

export async function createTestCa(name = 'Moatless Test CA'): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'moatless-ca-'))
  try {
    await openssl(dir, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ])
    const cert = await readFile(join(dir, 'ca.crt'), 'utf8')
    const key = await readFile(join(dir, 'ca.key'), 'utf8')
    return { cert, key, issue: (opts) => issue(cert, key, opts) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function issue(caCert: string, caKey: string, opts: IssueOptions): Promise<IssuedCert> {
  const dir = await mkdtemp(join(tmpdir(), 'moatless-cert-'))
  try {
    await writeFile(join(dir, 'ca.crt'), caCert)
    await writeFile(join(dir, 'ca.key'), caKey)
    const san = [...(opts.dns ?? []).map((d) => `DNS:${d}`), ...(opts.ips ?? []).map((ip) => `IP:${ip}`)]
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      ...(san.length > 0 ? [`subjectAltName=${san.join(',')}`] : []),
    ]
    await writeFile(join(dir, 'ext.cnf'), `${ext.join('\n')}\n`)
    await openssl(dir, [
      'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${opts.commonName}`,
    ])
    await openssl(dir, [
      'x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '2', '-extfile', 'ext.cnf', '-out', 'leaf.crt',
    ])
    const cert = await readFile(join(dir, 'leaf.crt'), 'utf8')
    const key = await readFile(join(dir, 'leaf.key'), 'utf8')
    return { cert, key, fingerprint: fingerprintOf(cert) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd })
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? ''
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`, { cause: err })
  }
}
