/**
 * Throwaway X.509 material: a CA, server certificates for host names, client certificates for
 * device identity, and PKCS#12 bundles a browser can import. Made with the openssl CLI (Node
 * cannot issue certificates), EC P-256 keys. The demo's HTTPS listener and the tests use it.
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
  /** Validity in days; default: the CA's. */
  days?: number
}

export interface CertificateAuthority {
  /** PEM of the CA certificate. */
  cert: string
  key: string
  issue (opts: IssueOptions): Promise<IssuedCert>
}

export function fingerprintOf (pem: string): string {
  return new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase()
}

/** A new self-signed CA, valid for `days` (default 2). */
export async function createCa (name: string, opts: { days?: number } = {}): Promise<CertificateAuthority> {
  const days = opts.days ?? 2
  const { cert, key } = await inTempDir(async (dir) => {
    await openssl(dir, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', String(days), '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'
    ])
    return { cert: await readFile(join(dir, 'ca.crt'), 'utf8'), key: await readFile(join(dir, 'ca.key'), 'utf8') }
  })
  return { cert, key, issue: (o) => issue(cert, key, { days, ...o }) }
}

async function issue (caCert: string, caKey: string, opts: IssueOptions): Promise<IssuedCert> {
  return await inTempDir(async (dir) => {
    await writeFile(join(dir, 'ca.crt'), caCert)
    await writeFile(join(dir, 'ca.key'), caKey, { mode: 0o600 })
    const san = [...(opts.dns ?? []).map((d) => `DNS:${d}`), ...(opts.ips ?? []).map((ip) => `IP:${ip}`)]
    const ext = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      ...(san.length > 0 ? [`subjectAltName=${san.join(',')}`] : [])
    ]
    await writeFile(join(dir, 'ext.cnf'), `${ext.join('\n')}\n`)
    await openssl(dir, [
      'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${opts.commonName}`
    ])
    await openssl(dir, [
      'x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', String(opts.days ?? 2), '-extfile', 'ext.cnf', '-out', 'leaf.crt'
    ])
    const cert = await readFile(join(dir, 'leaf.crt'), 'utf8')
    const key = await readFile(join(dir, 'leaf.key'), 'utf8')
    return { cert, key, fingerprint: fingerprintOf(cert) }
  })
}

/** A PKCS#12 bundle (certificate, key, CA) protected by `password`, for importing into a browser. */
export async function pkcs12 (cert: IssuedCert, caCert: string, opts: { name: string; password: string }): Promise<Buffer> {
  return await inTempDir(async (dir) => {
    await writeFile(join(dir, 'leaf.crt'), cert.cert)
    await writeFile(join(dir, 'leaf.key'), cert.key, { mode: 0o600 })
    await writeFile(join(dir, 'ca.crt'), caCert)
    await openssl(dir, [
      'pkcs12', '-export', '-in', 'leaf.crt', '-inkey', 'leaf.key', '-certfile', 'ca.crt',
      '-name', opts.name, '-passout', `pass:${opts.password}`, '-out', 'bundle.p12',
      // The widely readable algorithms: macOS Keychain and older Windows refuse OpenSSL 3's AES default.
      '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1'
    ])
    return await readFile(join(dir, 'bundle.p12'))
  })
}

/** Runs `fn` in a fresh private temp dir that is removed afterwards, whatever happens. */
async function inTempDir<T> (fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'moatless-pki-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function openssl (cwd: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') throw new Error('the openssl command is not installed (it issues the certificates)', { cause: err })
    throw new Error(`openssl ${args[0] ?? ''} failed: ${(e.stderr ?? '').trim()}`, { cause: err })
  }
}
