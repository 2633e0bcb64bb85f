/** authz: the pure evaluator. Compile a RuleSet once per config, evaluate per request. */
export { compileRuleSet, ruleSetBuilder } from './compile.js'
export type { AllowRule, CompiledApp, CompiledRule, CompileError, CompileResult, RuleSet, RuleSetBuilder } from './compile.js'
export { evaluate, explain } from './evaluate.js'
export type { DecisionInput, RuleExplanation } from './evaluate.js'
export { compileGlob } from './glob.js'
export type { Glob } from './glob.js'
export type { Criterion, Unmet } from './types.js'
