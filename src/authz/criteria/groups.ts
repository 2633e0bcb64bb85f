/** `groups: [...]` — membership in one of the groups (exact names from the groups claim). */
import type { CompileContext, ConfigPath, Criterion } from '../types.js'
import { checkStrings, leaf, listOf, oneOf } from './criterion.js'

export function compileGroups (values: string[], path: ConfigPath, ctx: CompileContext): Criterion | undefined {
  if (!checkStrings(values, path, ctx, 'groups')) return undefined
  const wanted = new Set(values)
  const firstMember = (groups: readonly string[]): string | undefined => {
    for (let i = 0; i < groups.length; i++) if (wanted.has(groups[i] as string)) return groups[i]
    return undefined
  }
  return leaf({
    kind: 'subject',
    description: `member of ${values.length === 1 ? values[0] : `one of ${listOf(values)}`}`,
    test: (input) => input.identity !== null && firstMember(input.identity.groups) !== undefined,
    unmet: (input) => {
      const has = input.identity?.groups ?? []
      return {
        code: 'groups-unauthorized',
        message: `needs ${oneOf('group', 'groups', values)} (member of: ${has.length === 0 ? 'none' : listOf(has)})`
      }
    },
    matched: (input) => `member of ${firstMember(input.identity?.groups ?? []) ?? ''}`
  })
}
