/**
 * `moatless sessions ...`: the server-side sessions in the shared store. Revoking deletes the
 * sessions and publishes `session-revoked`, so every replica drops them from its cache at
 * once (src/authn/sessions.ts) instead of trusting its copy until the cache times out.
 */
import { Command, Option } from 'commander'
import type { SessionRecord } from '../store/store.js'
import { action, CliError, count, iso, oneLine, printJson, printLine } from './output.js'
import { loadChecked, withStore } from './store.js'

const configOption = (): Option => new Option('-c, --config <file>', 'config file (YAML)').makeOptionMandatory()

export function registerSessionsCommands (program: Command): void {
  const sessions = program.command('sessions').description('server-side sessions in the store')

  sessions.command('list')
    .description('one session per line: id, email, sub, groups, created, last seen, expires')
    .addOption(configOption())
    .option('--user <email>', 'only the sessions of this user (email or sub)')
    .option('--json', 'one JSON document')
    .action(action(listCommand))

  sessions.command('revoke')
    .description('end sessions on every replica: all of a user\'s, or one by id')
    .addOption(configOption())
    .option('--user <email>', 'every session of this user (email or sub)')
    .option('--id <id>', 'one session, by the id `sessions list` shows')
    .option('--json', 'one JSON document')
    .action(action(revokeCommand))
}

async function listCommand (opts: { config: string; user?: string; json?: boolean }): Promise<void> {
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'sessions list', async (store) => {
    const list = await store.listSessions(opts.user === undefined ? undefined : { user: opts.user })
    if (opts.json === true) {
      printJson({ sessions: list.map(describe) })
      return
    }
    for (const s of list) {
      const groups = s.groups.length > 0 ? s.groups.join(',') : '-'
      printLine([s.id, s.email ?? '-', s.sub, groups, iso(s.created_at), iso(s.last_seen), iso(s.expires_at)].map(oneLine).join(' '))
    }
  })
}

/** What an operator may see of a session: never the (sealed) IdP tokens. */
function describe (s: SessionRecord): Record<string, unknown> {
  return {
    id: s.id,
    email: s.email ?? null,
    email_verified: s.email_verified ?? null,
    sub: s.sub,
    name: s.name ?? null,
    groups: s.groups,
    created_at: iso(s.created_at),
    last_seen: iso(s.last_seen),
    expires_at: iso(s.expires_at),
    refreshed_at: iso(s.refreshed_at)
  }
}

async function revokeCommand (opts: { config: string; user?: string; id?: string; json?: boolean }): Promise<void> {
  if ((opts.user === undefined) === (opts.id === undefined)) throw new CliError('moatless sessions revoke: give exactly one of --user EMAIL or --id ID')
  const { loaded } = loadChecked(opts.config)
  await withStore(loaded, 'sessions revoke', async (store) => {
    let ids: string[]
    if (opts.id !== undefined) {
      if (!await store.deleteSession(opts.id)) throw new CliError(`moatless sessions revoke: no session with id ${opts.id}`)
      ids = [opts.id]
    } else {
      ids = await store.deleteUserSessions(opts.user as string)
    }
    if (ids.length > 0) await store.publish({ type: 'session-revoked', ids })
    if (opts.json === true) printJson({ revoked: ids.length, ids })
    else printLine(`revoked ${count(ids.length, 'session')}`)
  })
}
