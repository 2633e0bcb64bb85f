#!/usr/bin/env node
import { Command, Option } from 'commander'
import { createLogger } from '../log.js'
import { checkConfig, checkedOrExit } from './load.js'
import { formatErrors } from '../config/index.js'
import { registerRulesCommands } from './rules.js'
import { registerSessionsCommands } from './sessions.js'
import { registerDevicesCommands } from './devices.js'
import { registerAgentCommands } from './agent.js'

const program = new Command()
program.name('moatless').description('Zero-trust access proxy: every request authenticated, device-checked and authorized')
  .showHelpAfterError()

const configOption = (): Option => new Option('-c, --config <file>', 'config file (YAML)').makeOptionMandatory()

program.command('check')
  .description('validate the config and rules; prints FILE:LINE:COL message per error')
  .addOption(configOption())
  .action((opts: { config: string }) => {
    const r = checkConfig(opts.config)
    if (!r.ok) {
      process.stderr.write(formatErrors(r.errors) + '\n')
      process.exitCode = 1
      return
    }
    const apps = r.ruleset.apps
    const rules = apps.reduce((n, a) => n + a.rules.length, 0)
    process.stdout.write(`${r.loaded.file}: ok (${apps.length} app${apps.length === 1 ? '' : 's'}, ${rules} rule${rules === 1 ? '' : 's'}, store ${r.loaded.config.store === undefined ? 'memory' : 'redis'})\n`)
  })

program.command('serve')
  .description('run the proxy')
  .addOption(configOption())
  .action(async (opts: { config: string }) => {
    const { loaded } = checkedOrExit(opts.config)
    const logger = createLogger()
    const { startServer } = await import('../server.js')
    let server: Awaited<ReturnType<typeof startServer>>
    try {
      server = await startServer(loaded.config, logger, { rawApps: Array.isArray(loaded.raw.apps) ? loaded.raw.apps : [] })
    } catch (err) {
      logger.fatal({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'moatless failed to start')
      logger.flush()
      process.exitCode = 1
      return
    }
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      logger.info({ signal }, 'shutting down: finishing in-flight requests')
      const force = setTimeout(() => { logger.warn('shutdown timed out; exiting'); process.exit(1) }, 25_000)
      force.unref()
      server.close().then(() => { logger.info('stopped'); logger.flush(); process.exitCode = 0 }, () => process.exit(1))
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })

program.command('demo')
  .description('the embedded demo: built-in IdP, two demo apps, the proxy (memory store)')
  .option('--redis <url>', 'run the demo on Redis instead of the memory store')
  .option('--port <port>', 'public port', '8080')
  .option('--tls-port <port>', 'HTTPS port (the admin app with device certificates)', '8443')
  .option('--dir <dir>', 'where the demo CA and the device certificate are kept (default: ~/.cache/moatless-demo)')
  .action(async (opts: { redis?: string; port: string; tlsPort: string; dir?: string }) => {
    const { runDemo } = await import('../demo/run.js')
    await runDemo({ redis: opts.redis, port: Number(opts.port), tlsPort: Number(opts.tlsPort), dir: opts.dir })
  })

registerRulesCommands(program)
registerSessionsCommands(program)
registerAgentCommands(program)
registerDevicesCommands(program)

await program.parseAsync(process.argv)
