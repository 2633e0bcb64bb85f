/**
 * The shapes every criterion shares. Kept apart from evaluate.ts so that criteria, the
 * condition compiler and the evaluator depend on this file and not on each other.
 */
import type { DeviceContext, Identity } from '../context.js'

/** What a decision is made on. `path` is the normalized path (proxy/normalize-path). */
export interface DecisionInput {
  identity: Identity | null
  device: DeviceContext
  method: string
  path: string
  sourceIp: string
}

/** One unmet requirement: a kebab-case code (stable, for logs) and a sentence for people. */
export interface Unmet {
  code: string
  message: string
}

/**
 * A compiled criterion. `test` is the hot path and must not allocate beyond trivia;
 * `unmet` and `matched` only run to explain a denial.
 */
export interface Criterion {
  /** 'request' criteria (paths, methods) say which requests a rule is about. */
  readonly kind: 'request' | 'subject'
  /** What the criterion requires, e.g. `member of engineering`. */
  readonly description: string
  test (input: DecisionInput): boolean
  /** Why `test(input)` is false. */
  unmet (input: DecisionInput): Unmet[]
  /** What made `test(input)` true, e.g. `member of contractors`. */
  matched (input: DecisionInput): string
  /** Whether the request-scoping parts (paths, methods) hold; true when there are none. */
  inScope (input: DecisionInput): boolean
}

export type ConfigPath = (string | number)[]

export interface CompileError {
  /** Path into the config document, e.g. ['apps', 0, 'rules', 2, 'allow', 'paths', 1]. */
  path: ConfigPath
  message: string
}

/** Passed down while compiling: where errors go and what the configured levels are. */
export interface CompileContext {
  errors: CompileError[]
  /** 'none' → 0, then configured levels lowest first → 1..n. */
  levelRanks: ReadonlyMap<string, number>
  levels: readonly string[]
}
