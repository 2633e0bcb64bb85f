/**
 * stripOurCookies (src/authn/cookies.ts) runs on every forwarded request; it was rewritten to
 * avoid a lowercased copy of the header and an array. Whatever the header, it must keep and drop
 * exactly what the straightforward version did: checked here on fixed cases and on thousands of
 * random headers built from names that are ours in other letter cases, look-alikes, odd spacing,
 * empty parts and values with `=` and `;`-free junk.
 */
import t from 'tap'
import { ALL_COOKIE_NAMES, stripOurCookies } from '../../src/authn/cookies.js'

/** The earlier implementation, as the reference. */
function reference (header: string): string | undefined {
  if (!header.toLowerCase().includes('moatless_')) return header
  const kept: string[] = []
  for (const part of header.split(';')) {
    const p = part.trim()
    if (p.length === 0) continue
    const eq = p.indexOf('=')
    const name = eq === -1 ? p : p.slice(0, eq)
    if (!ALL_COOKIE_NAMES.has(name.trim().toLowerCase())) kept.push(p)
  }
  return kept.length > 0 ? kept.join('; ') : undefined
}

t.test('fixed cases', async (t) => {
  const cases: [string, string | undefined][] = [
    ['theme=dark', 'theme=dark'],
    ['moatless_session=abc', undefined],
    ['a=1; moatless_session=abc; b=2', 'a=1; b=2'],
    ['  a=1 ;MOATLESS_SESSION=x;; __Host-Moatless_Login=y ; b', 'a=1; b'],
    ['moatless_session =abc', undefined],
    ['moatless_sessions=abc', 'moatless_sessions=abc'],
    ['xmoatless_session=abc', 'xmoatless_session=abc'],
    ['moatless_session', undefined],
    ['a=b=c; moatless_login=1=2', 'a=b=c'],
    [';;;', ';;;'],
    ['moatless_x=1;;', 'moatless_x=1'],
    ['', '']
  ]
  for (const [header, want] of cases) {
    t.equal(stripOurCookies(header), want, JSON.stringify(header))
    t.equal(stripOurCookies(header), reference(header), `same as the reference: ${JSON.stringify(header)}`)
  }
})

t.test('random headers: the same answer as the reference', async (t) => {
  const names = ['moatless_session', 'MOATLESS_SESSION', 'Moatless_Login', '__host-moatless_session', '__Host-moatless_login', '__HOST-MOATLESS_LOGIN',
    'moatless_', 'moatless_sessio', 'moatless_session2', 'host-moatless_session', 'theme', 'sid', 'a', '', 'moatleſs_session', 'moatless\u00a0session']
  const spaces = ['', ' ', '  ', '\t', ' \t ']
  const values = ['', 'x', 'abc=def', 'AAAA'.repeat(20), 'moatless_session', '"quoted"']
  let seed = 7
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
  const pick = <T>(xs: T[]): T => xs[rand(xs.length)] as T
  let mismatches = 0
  const runs = 20_000
  for (let i = 0; i < runs; i++) {
    const parts: string[] = []
    const count = rand(6)
    for (let j = 0; j < count; j++) {
      const name = pick(names)
      parts.push(rand(5) === 0 ? `${pick(spaces)}${name}${pick(spaces)}` : `${pick(spaces)}${name}${pick(spaces)}=${pick(values)}${pick(spaces)}`)
    }
    const header = parts.join(pick([';', '; ', ' ;', ';;']))
    if (stripOurCookies(header) !== reference(header)) {
      mismatches++
      if (mismatches <= 5) t.fail(`differs on ${JSON.stringify(header)}: ${JSON.stringify(stripOurCookies(header))} vs ${JSON.stringify(reference(header))}`)
    }
  }
  t.equal(mismatches, 0, `${runs} random headers`)
})
