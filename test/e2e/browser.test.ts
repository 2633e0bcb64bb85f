/**
 * The demo in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) against `startDemo` on a free port, exactly as a person would click through
 * it. Chromium resolves *.localhost to loopback itself, so the app origins work as in the banner.
 *
 * Every step leaves a screenshot in test-output/e2e/; the sign-in and deny pages are also
 * copied to docs/screenshots/ when missing there (MOATLESS_UPDATE_SCREENSHOTS=1 overwrites).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startDemo, type Demo } from '../../src/demo/run.js'
import { createLogger } from '../../src/log.js'
import { freePort } from '../helpers/ports.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const OUT = join(ROOT, 'test-output', 'e2e')
const DOCS = join(ROOT, 'docs', 'screenshots')
mkdirSync(OUT, { recursive: true })

const logs: Array<Record<string, unknown>> = []
const sink = new Writable({
  write (chunk: Buffer, _enc, cb) {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
    cb()
  }
})

// Both take a second or two; start them side by side.
const [demo, browser]: [Demo, Browser] = await Promise.all([
  freePort().then((port) => startDemo({ port, logger: createLogger({ destination: sink, level: 'info' }) })),
  chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync']
  })
])
t.teardown(() => demo.close())
t.teardown(() => browser.close())

async function shot (page: Page, name: string, docsName?: string): Promise<void> {
  const file = join(OUT, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  if (docsName === undefined) return
  const target = join(DOCS, docsName)
  if (!existsSync(target) || process.env.MOATLESS_UPDATE_SCREENSHOTS === '1') {
    mkdirSync(dirname(target), { recursive: true })
    copyFileSync(file, target)
  }
}

/** From wherever the app sent the browser: sign in at the IdP's form, land back on `landing`. */
async function signInAtIdp (page: Page, user: string, landing: string): Promise<void> {
  await page.waitForSelector('#sign-in')
  await page.fill('#username', user)
  await page.fill('#password', `${user}-password`)
  await Promise.all([page.waitForURL((u) => u.href.startsWith(landing)), page.click('#sign-in')])
}

const newPage = async (): Promise<Page> => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } })
  return await context.newPage()
}

const alice = await newPage()

t.test('alice signs in through the IdP form and sees the wiki with her verified identity', async (t) => {
  await alice.goto(`${demo.wikiUrl}/`)
  await alice.waitForSelector('#sign-in')
  t.equal(new URL(alice.url()).origin, demo.idpIssuer, 'sent to the IdP to sign in')
  t.match(await alice.textContent('body'), /alice-password/, 'the sign-in page lists the demo users')
  await alice.fill('#username', 'alice')
  await alice.fill('#password', 'alice-password')
  await shot(alice, '01-sign-in', 'sign-in.png')
  await Promise.all([alice.waitForURL(`${demo.wikiUrl}/`), alice.click('#sign-in')])

  t.equal(await alice.textContent('h1'), 'Welcome, alice@example.com')
  t.match(await alice.textContent('#assertion-status'), /✓ Verified/, 'the app verified the assertion against the JWKS')
  const claims = await alice.textContent('#claims') ?? ''
  t.match(claims, /emailalice@example\.com/)
  t.match(claims, /groupsengineering/)
  t.match(claims, new RegExp(`iss${demo.authUrl.replaceAll('.', '\\.')}`))
  t.match(claims, new RegExp(`aud${demo.wikiUrl.replaceAll('.', '\\.')}`))
  const identity = await alice.textContent('#identity') ?? ''
  t.match(identity, /X-Moatless-Emailalice@example\.com/)
  t.match(identity, /X-Moatless-Groupsengineering/)
  const css = await alice.evaluate(() => getComputedStyle(document.querySelector('header.top') as Element).backgroundColor)
  t.equal(css, 'rgb(55, 48, 163)', 'the stylesheet from the public path /static/** loaded')
  await shot(alice, '02-wiki-alice')
})

t.test('alice (engineering) opens the wiki admin pages and the admin app without signing in again', async (t) => {
  const wikiAdmin = await alice.goto(`${demo.wikiUrl}/admin/`)
  t.equal(wikiAdmin?.status(), 200)
  t.equal(await alice.textContent('h1'), 'Wiki administration')

  const admin = await alice.goto(`${demo.adminAppUrl}/`)
  t.equal(admin?.status(), 200, 'the handoff signed her in on the second origin')
  t.equal(new URL(alice.url()).origin, demo.adminAppUrl)
  t.equal(await alice.textContent('h1'), 'Admin console')
  t.match(await alice.textContent('#assertion-status'), /✓ Verified/)
  t.match(await alice.textContent('#claims'), new RegExp(`aud${demo.adminAppUrl.replaceAll('.', '\\.')}`), 'an assertion for this app\'s audience')
  await shot(alice, '03-admin-app-alice')
})

t.test('bob (contractors) is denied the admin app and the wiki admin pages, with explanations', async (t) => {
  const bob = await newPage()
  await bob.goto(`${demo.adminAppUrl}/`)
  await signInAtIdp(bob, 'bob', demo.adminAppUrl)
  const text = await bob.textContent('main') ?? ''
  t.match(await bob.textContent('h1'), 'Access denied')
  t.match(text, /bob@example\.com/)
  t.match(text, /default-deny/, 'names the deciding rule')
  t.match(text, /engineers-only/, 'names the rule that would have allowed')
  t.match(text, /engineering/, 'names the missing group')
  t.match(text, /Request id/)
  await shot(bob, '04-deny-admin-app-bob', 'deny.png')
  const again = await bob.goto(`${demo.adminAppUrl}/`)
  t.equal(again?.status(), 403)

  const wiki = await bob.goto(`${demo.wikiUrl}/`)
  t.equal(wiki?.status(), 200, 'bob reads the wiki')
  t.equal(await bob.textContent('h1'), 'Welcome, bob@example.com')

  const wikiAdmin = await bob.goto(`${demo.wikiUrl}/admin/`)
  t.equal(wikiAdmin?.status(), 403)
  t.match(await bob.textContent('main'), /no-contractors-in-admin/)
  await shot(bob, '05-deny-wiki-admin-bob')
  await bob.context().close()

  const denials = logs.filter((l) => l.msg === 'decision' && l.status === 403)
  t.ok(denials.some((l) => l.app === 'admin' && l.rule === 'default-deny' && l.user !== null), 'the admin denial is logged')
  t.ok(denials.some((l) => l.app === 'wiki' && l.rule === 'no-contractors-in-admin' && l.path === '/admin/'), 'the wiki denial is logged')
})

t.test('carol (email not verified) is denied the wiki by its domain rule', async (t) => {
  const carol = await newPage()
  await carol.goto(`${demo.wikiUrl}/`)
  await signInAtIdp(carol, 'carol', demo.wikiUrl)
  t.equal(await carol.textContent('h1'), 'Access denied')
  t.match(await carol.textContent('main'), /example-staff/)
  await shot(carol, '06-deny-wiki-carol')
  const admin = await carol.goto(`${demo.adminAppUrl}/`)
  t.equal(admin?.status(), 200, 'engineering: the admin app lets her in')
  await carol.context().close()
})

t.test('alice signs out and is asked to sign in again', async (t) => {
  await alice.goto(`${demo.wikiUrl}/`)
  await Promise.all([alice.waitForURL(`${demo.authUrl}/.moatless/signed_out`), alice.click('#sign-out')])
  t.equal(await alice.textContent('h1'), 'Signed out')
  await shot(alice, '07-signed-out')

  await alice.goto(`${demo.wikiUrl}/`)
  await alice.waitForSelector('#sign-in')
  t.equal(new URL(alice.url()).origin, demo.idpIssuer, 'back at the IdP: the IdP session ended too')
  await shot(alice, '08-sign-in-again')
  const admin = await alice.goto(`${demo.adminAppUrl}/`)
  t.equal(new URL(alice.url()).origin, demo.idpIssuer, 'the admin app session ended as well')
  t.equal(admin?.status(), 200)
  await alice.context().close()
})
