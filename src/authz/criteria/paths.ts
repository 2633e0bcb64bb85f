/** `paths: [...]` — globs on the normalized request path (see ../glob.ts). */
import { compileGlobList } from '../glob.js'
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { checkStrings, leaf, listOf } from './criterion.js'

export function compilePaths (values: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(values, path, ctx, 'paths')) return undefined
  const globs = compileGlobList(values, path, ctx)
  if (globs === undefined) return undefined
  return leaf({
    kind: 'request',
    description: `on ${listOf(values)}`,
    test: (input) => globs.matches(input.path),
    unmet: () => ({ code: 'http-path-unauthorized', message: `only for paths ${listOf(values)}` }),
    matched: (input) => `on ${globs.firstMatch(input.path) ?? ''}`
  })
}
