/**
 * `moatless agent ...`: the device agent, run on the user's machine.
 *
 *   moatless agent keygen [--out DIR] [--alg ES256|EdDSA] [--id ID] [--owner EMAIL] [--force]
 *     writes DIR/device.key.pem (PKCS#8, 0600) and DIR/device.pub.pem (SPKI), prints the
 *     public key and the `moatless devices enroll` command that enrolls it.
 *   moatless agent report --url AUTH_URL --device-id ID --key FILE [--ca FILE] [--dry-run]
 *     collects this machine's posture, signs it with the device key and POSTs it to
 *     AUTH_URL/.moatless/device/report. stdout: the posture JSON that was sent (never the
 *     JWT), then the answer; exit 0 on 204, 1 otherwise with the server's reason on stderr.
 *     --dry-run: prints the posture (stdout is exactly that JSON) and sends nothing.
 */
import { readFile, stat } from 'node:fs/promises'
import { isAbsolute, relative, resolve } from 'node:path'
import { Command, Option } from 'commander'
import { DEVICE_ALGS, PRIVATE_KEY_FILE, postureClaim, type DeviceAlg } from '../device-trust/agent/types.js'
import type { parseDevicePrivateKey, writeDeviceKeys } from '../device-trust/agent/keygen.js'
import { action, CliError, printJson, printLine } from './output.js'

export function registerAgentCommands (program: Command): void {
  const agent = program.command('agent').description('the device agent: device key and signed posture reports')

  agent.command('keygen')
    .description('create the device key pair; prints the public key and the command that enrolls it')
    .option('--out <dir>', 'directory for device.key.pem and device.pub.pem', '.')
    .addOption(new Option('--alg <alg>', 'key algorithm').choices([...DEVICE_ALGS]).default('ES256'))
    .option('--id <id>', 'device id to put in the printed enroll command')
    .option('--owner <email>', 'owner to put in the printed enroll command')
    .option('--force', 'replace an existing key pair')
    .action(action(keygenCommand))

  agent.command('report')
    .description('collect this machine\'s posture and send it, signed by the device key, to the authenticate origin')
    .option('--url <url>', 'the authenticate URL (authenticate.url of the proxy config)')
    .option('--device-id <id>', 'the enrolled device id (iss of the report)')
    .option('--key <file>', `the device private key (${PRIVATE_KEY_FILE} from \`moatless agent keygen\`)`)
    .option('--ca <file>', 'PEM CA certificate(s) to trust for the authenticate URL')
    .option('--dry-run', 'print the posture and send nothing')
    .action(action(reportCommand))
}

/** A path as the user should type it from here: relative when below the current directory. */
function shownPath (p: string): string {
  const rel = relative(process.cwd(), resolve(p))
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : resolve(p)
}

function shellWord (s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`
}

// jose and undici are loaded by the agent commands only, not by every `moatless` invocation.
const keygenModule = (): Promise<typeof import('../device-trust/agent/keygen.js')> => import('../device-trust/agent/keygen.js')

async function keygenCommand (opts: { out: string; alg: DeviceAlg; id?: string; owner?: string; force?: boolean }): Promise<void> {
  const { KeyExistsError, writeDeviceKeys } = await keygenModule()
  let written: Awaited<ReturnType<typeof writeDeviceKeys>>
  try {
    written = await writeDeviceKeys(opts.out, opts.alg, { force: opts.force === true })
  } catch (err) {
    if (err instanceof KeyExistsError) throw new CliError(`moatless agent keygen: ${err.message}`)
    throw new CliError(`moatless agent keygen: cannot write the key pair to ${opts.out}: ${(err as Error).message}`)
  }
  const pub = shownPath(written.publicPath)
  const key = shownPath(written.privatePath)
  printLine(`wrote ${key} (${opts.alg} private key, mode 0600: keep it on this device)`)
  printLine(`wrote ${pub} (public key)`)
  printLine()
  process.stdout.write(written.publicPem.endsWith('\n') ? written.publicPem : written.publicPem + '\n')
  printLine()
  printLine('Enroll the device (an operator, with the proxy\'s config):')
  printLine(`  moatless devices enroll --config FILE --id ${shellWord(opts.id ?? 'ID')} --owner ${shellWord(opts.owner ?? 'EMAIL')} --public-key ${shellWord(pub)}`)
  printLine('Then report this device\'s posture:')
  printLine(`  moatless agent report --url AUTH_URL --device-id ${shellWord(opts.id ?? 'ID')} --key ${shellWord(key)}`)
}

async function readKey (file: string): Promise<ReturnType<typeof parseDevicePrivateKey>> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    throw new CliError(`moatless agent report: --key ${file}: ${(err as Error).message}`)
  }
  if (process.platform !== 'win32') {
    const st = await stat(file)
    if ((st.mode & 0o077) !== 0) {
      process.stderr.write(`moatless agent report: warning: ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it\n`)
    }
  }
  const { parseDevicePrivateKey } = await keygenModule()
  try {
    return parseDevicePrivateKey(pem)
  } catch (err) {
    throw new CliError(`moatless agent report: --key ${file}: ${(err as Error).message}`)
  }
}

interface ReportOptions { url?: string; deviceId?: string; key?: string; ca?: string; dryRun?: boolean }

async function reportCommand (opts: ReportOptions): Promise<void> {
  const { reportClaims, reportEndpoint, sendReport, signReport } = await import('../device-trust/agent/report.js')
  const { collectPosture } = await import('../device-trust/agent/collect.js')
  const dryRun = opts.dryRun === true
  if (!dryRun) {
    const missing = ([['--url', opts.url], ['--device-id', opts.deviceId], ['--key', opts.key]] as const)
      .filter(([, v]) => v === undefined || v === '').map(([n]) => n)
    if (missing.length > 0) throw new CliError(`moatless agent report: missing ${missing.join(', ')} (or use --dry-run to only see the posture)`)
  }
  // Everything that can be wrong with the arguments is found before the posture is collected.
  let endpoint: string | undefined
  try {
    endpoint = opts.url === undefined ? undefined : reportEndpoint(opts.url)
  } catch (err) {
    throw new CliError(`moatless agent report: ${(err as Error).message}`)
  }
  const key = opts.key === undefined ? undefined : await readKey(opts.key)
  let ca: string | undefined
  if (opts.ca !== undefined) {
    try {
      ca = await readFile(opts.ca, 'utf8')
    } catch (err) {
      throw new CliError(`moatless agent report: --ca ${opts.ca}: ${(err as Error).message}`)
    }
  }

  let posture
  try {
    posture = postureClaim(await collectPosture())
  } catch (err) {
    throw new CliError(`moatless agent report: ${(err as Error).message}`)
  }
  printJson(posture)

  if (dryRun) {
    const target = endpoint === undefined ? '' : ` (would POST to ${endpoint}${opts.deviceId !== undefined ? ` as ${opts.deviceId}` : ''}${key !== undefined ? `, ${key.alg}` : ''})`
    process.stderr.write(`dry run: nothing sent${target}\n`)
    return
  }

  const claims = reportClaims(opts.deviceId as string, endpoint as string, posture)
  const jwt = await signReport(claims, key!.key, key!.alg)
  let answer
  try {
    answer = await sendReport(endpoint as string, jwt, ca === undefined ? {} : { ca })
  } catch (err) {
    const e = err as Error & { cause?: { message?: string; code?: string } }
    const cause = e.cause?.message ?? e.cause?.code
    throw new CliError(`moatless agent report: POST ${endpoint as string}: ${e.name === 'TimeoutError' ? 'no answer in time' : e.message}${cause !== undefined ? ` (${cause})` : ''}`)
  }
  if (!answer.ok) throw new CliError(`moatless agent report: POST ${endpoint as string}: ${answer.status} ${answer.reason}`)
  printLine(`POST ${endpoint as string}: ${answer.status} ${answer.reason}`)
}
