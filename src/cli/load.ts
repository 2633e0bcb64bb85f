import { compileRuleSet, type RuleSet } from '../authz/index.js'
import { formatErrors, loadConfig, type ConfigError, type LoadedConfig } from '../config/index.js'

export type Checked = { ok: true; loaded: LoadedConfig; ruleset: RuleSet } | { ok: false; errors: ConfigError[] }

/** Config + rules, every error at once, each at the line of the offending key. */
export function checkConfig (file: string): Checked {
  const r = loadConfig(file)
  if (!r.ok) return r
  const { loaded } = r
  const c = compileRuleSet(loaded.config.apps, loaded.config.device_trust.levels.map((l) => l.name))
  if (!c.ok) {
    return {
      ok: false,
      errors: c.errors.map((e) => ({ file: loaded.file, ...loaded.locate(e.path), message: e.message }))
    }
  }
  return { ok: true, loaded, ruleset: c.ruleset }
}

/** Loads and checks, or prints the errors and exits 1. */
export function checkedOrExit (file: string): { loaded: LoadedConfig; ruleset: RuleSet } {
  const r = checkConfig(file)
  if (!r.ok) {
    process.stderr.write(formatErrors(r.errors) + '\n')
    process.exit(1)
  }
  return r
}
