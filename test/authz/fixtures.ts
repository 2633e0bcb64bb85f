/** Builders shared by the authz tests: configs go through the real schema, as in production. */
import { App, type AppConfig } from '../../src/config/schema.js'
import type { DeviceContext, Identity } from '../../src/context.js'
import { compileRuleSet, type CompiledApp, type DecisionInput } from '../../src/authz/index.js'

export const LEVELS = ['known', 'managed', 'high']

export function appConfig (fields: Record<string, unknown>): AppConfig {
  return App.parse({ name: 'wiki', from: 'http://wiki.localhost:8080', to: 'http://127.0.0.1:9001', ...fields })
}

/** Compiles one app or throws with the compile errors. */
export function compileApp (fields: Record<string, unknown>): CompiledApp {
  const result = compileRuleSet([appConfig(fields)], LEVELS)
  if (!result.ok) throw new Error(`compile failed: ${JSON.stringify(result.errors)}`)
  return result.ruleset.apps[0] as CompiledApp
}

export function user (fields: Partial<Identity> = {}): Identity {
  return {
    sub: 'u-alice',
    email: 'alice@example.com',
    email_verified: true,
    groups: [],
    claims: {},
    via: 'session',
    ...fields
  }
}

export function device (trust: string, fields: Partial<DeviceContext> = {}): DeviceContext {
  const rank = ['none', ...LEVELS].indexOf(trust)
  if (rank === -1) throw new Error(`no level ${trust}`)
  return { id: trust === 'none' ? null : 'dev-1', trust, trustRank: rank, reasons: [], ...fields }
}

export function request (fields: Partial<DecisionInput> = {}): DecisionInput {
  return { identity: user(), device: device('none'), method: 'GET', path: '/', sourceIp: '203.0.113.7', ...fields }
}
