/**
 * Shared checks for the attack-family tests in this folder: what the upstream saw since a
 * point in time, and that an answer is an answer (no 500, no stack trace, no echo of internals).
 */
import { connect } from 'node:net'
import type { Test } from 'tap'
import { Browser } from '../helpers/browser.js'
import type { Seen } from '../helpers/upstream.js'
import { browserSignIn, startStack, type Stack } from '../helpers/stack.js'

export const JSONH = { accept: 'application/json' }

/**
 * The stack most attack families run against: one app, `wiki`, with identity headers, a deny
 * rule on /admin/** and example.com staff allowed; alice signed in. The caller closes the stack.
 */
export async function wikiWithAlice (opts: { publicPaths?: string[] } = {}): Promise<{ stack: Stack; alice: Browser; host: string; cookie: string }> {
  const stack = await startStack({
    apps: {
      wiki: {
        identity_headers: true,
        ...(opts.publicPaths === undefined ? {} : { public_paths: opts.publicPaths }),
        rules: [
          { name: 'nobody-in-admin', deny: { paths: ['/admin/**'] } },
          { name: 'staff', allow: { domains: ['example.com'] } }
        ]
      }
    }
  })
  const alice = new Browser()
  await browserSignIn(alice, stack, `${stack.origin('wiki')}/`, 'alice')
  return { stack, alice, host: `wiki.localhost:${stack.port}`, cookie: alice.cookieHeader(stack.origin('wiki')) }
}

/** A stack frame (`at fn (/path/file.js:1:2)`) or a Node error dump in a response body. */
const STACK_TRACE = /\bat (?:[\w.<>]+ )?\(?(?:file:\/\/)?\/[^\s)]+\.[cm]?[jt]s:\d+|node:internal|\n\s+at /

export interface Answer { status: number; body: string }

/** Nothing crashed: not a 500, no stack trace in the body. */
export function noCrash (t: Test, res: Answer, what: string): void {
  t.not(res.status, 500, `${what}: not a 500`)
  t.notMatch(res.body, STACK_TRACE, `${what}: no stack trace in the body`)
}

/** Records the upstream's request count now; `since()` is what it received afterwards. */
export function mark (stack: Stack): { since (): Seen[] } {
  const before = stack.upstream.requests.length
  return { since: () => stack.upstream.requests.slice(before) }
}

/** The Cookie header a browser sends to `origin`. */
export function cookieFor (browser: Browser, origin: string): string {
  return browser.cookieHeader(origin)
}

/**
 * The decision log line of a request id (the upstream sees it as X-Request-Id). The line is
 * written when the response ends, which may be a moment after the client has read it.
 */
export async function decisionOf (stack: Stack, requestId: unknown): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 100; i++) {
    const line = stack.logs.find((l) => l.msg === 'decision' && l.request_id === requestId)
    if (line !== undefined) return line
    await sleep(5)
  }
  return undefined
}

/** The status of the last response in raw bytes (an interim 100 Continue is skipped). */
export function finalStatus (raw: string): number {
  const all = [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]))
  const final = all.filter((s) => s >= 200)
  return final[0] ?? all[0] ?? 0
}

/** A value as one printable TAP line (JSON, non-ASCII and controls escaped). */
export function show (v: string): string {
  return JSON.stringify(v).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Sends bytes and reads until the server closes the connection (for pipelined requests). */
export function rawExchange (port: number, text: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => sock.destroy(), timeoutMs)
    sock.on('data', (d: Buffer) => { data += d.toString('latin1') })
    sock.on('close', () => { clearTimeout(timer); resolve(data) })
    sock.on('error', () => { /* resolved on close */ })
    sock.write(text)
  })
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
