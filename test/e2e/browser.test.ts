/**
 * The demo in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core) against `startDemo` on a free port, exactly as a person would click through
 * it. Chromium resolves *.localhost to loopback itself, so the app origins work as in the banner.
 *
 * Device trust as a browser meets it: alice's context presents the demo device certificate
 * (Playwright's clientCertificates) to the demo's HTTPS origin; the device is enrolled but has
 * not reported, so she is denied until the simulated agent sends a healthy posture report.
 *
 * Every step leaves a screenshot in test-output/e2e/; the sign-in and deny pages are also
 * copied to docs/screenshots/ when missing there (MOATLESS_UPDATE_SCREENSHOTS=1 overwrites).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startDemo, type Demo } from '../../src/demo/run.js'
import { createLogger } from '../../src/log.js'
import { resolveLocalhostNamesAsBrowsersDo } from '../helpers/localhost-dns.js'
import { freePort } from '../helpers/ports.js'

resolveLocalhostNamesAsBrowsersDo()

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

// The demo's certificates in a private dir, made anew for this run.
const dir = mkdtempSync(join(tmpdir(), 'moatless-e2e-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// Both take a second or two; start them side by side.
const [demo, browser]: [Demo, Browser] = await Promise.all([
  Promise.all([freePort(), freePort()]).then(([port, tlsPort]) =>
    startDemo({ port, tlsPort, dir, logger: createLogger({ destination: sink, level: 'info' }) })),
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

const newPage = async (opts: { withDevice?: boolean } = {}): Promise<Page> => {
  const context = await browser.newContext({
    viewport: { width: 1100, height: 720 },
    // The demo's HTTPS certificate comes from its own CA, which this browser does not know.
    ignoreHTTPSErrors: true,
    ...(opts.withDevice === true
      ? { clientCertificates: [{ origin: demo.adminTlsUrl, certPath: demo.device.files.deviceCert, keyPath: demo.device.files.deviceKey }] }
      : {})
  })
  return await context.newPage()
}

/** alice's browser runs on her enrolled laptop: it presents alice-laptop's certificate. */
const alice = await newPage({ withDevice: true })

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

t.test('alice (engineering) opens the wiki admin pages; the admin app wants a device, which plain HTTP cannot show', async (t) => {
  const wikiAdmin = await alice.goto(`${demo.wikiUrl}/admin/`)
  t.equal(wikiAdmin?.status(), 200)
  t.equal(await alice.textContent('h1'), 'Wiki administration')

  const admin = await alice.goto(`${demo.adminAppUrl}/`)
  t.equal(admin?.status(), 403, 'signed in by handoff, then denied: no device')
  t.equal(new URL(alice.url()).origin, demo.adminAppUrl)
  const text = await alice.textContent('main') ?? ''
  t.match(await alice.textContent('h1'), 'Access denied')
  t.match(text, /alice@example\.com/)
  t.match(text, /engineers-on-managed-devices/)
  t.match(text, /needs a device at level managed; no device was identified/)
  await shot(alice, '03-admin-http-no-device-alice')
})

t.test('over HTTPS alice\'s laptop is identified: denied while it has not reported, allowed after a healthy report', async (t) => {
  const first = await alice.goto(`${demo.adminTlsUrl}/`)
  t.equal(new URL(alice.url()).origin, demo.adminTlsUrl, 'signed in on the HTTPS origin by handoff, no second sign-in')
  t.equal(first?.status(), 403)
  let text = await alice.textContent('main') ?? ''
  t.match(text, /needs a device at level managed; this device is known/, 'the device was recognised by its certificate')
  t.match(text, /moatless agent report/, 'says what to do next')
  await shot(alice, '04-admin-device-not-reported-alice', 'device-deny.png')

  const agent = await alice.context().newPage()
  await agent.goto(`${demo.agentUrl}/`)
  t.equal(await agent.textContent('#level'), 'known')
  await Promise.all([agent.waitForURL(`${demo.agentUrl}/`), agent.click('#report-healthy')])
  t.match(await agent.textContent('#result'), /answered 204/)
  t.equal(await agent.textContent('#level'), 'managed', 'the signed report made the device managed')
  await shot(agent, '05-device-agent-report')

  const allowed = await alice.goto(`${demo.adminTlsUrl}/`)
  t.equal(allowed?.status(), 200, 'allowed once the device is managed')
  t.equal(await alice.textContent('h1'), 'Admin console')
  t.match(await alice.textContent('#assertion-status'), /✓ Verified/)
  const claims = await alice.textContent('#claims') ?? ''
  t.match(claims, new RegExp(`aud${demo.adminTlsUrl.replaceAll('.', '\\.')}`), 'an assertion for this origin\'s audience')
  t.match(claims, /device_idalice-laptop/)
  t.match(claims, /device_trustmanaged/)
  await shot(alice, '06-admin-app-managed-device-alice', 'device-allowed.png')

  // The laptop now reports its disk unencrypted: the very next request is denied, and says why.
  await Promise.all([agent.waitForURL(`${demo.agentUrl}/`), agent.click('#report-disk-off')])
  t.equal(await agent.textContent('#level'), 'known')
  const denied = await alice.goto(`${demo.adminTlsUrl}/`)
  t.equal(denied?.status(), 403)
  text = await alice.textContent('main') ?? ''
  t.match(text, /disk encryption is off/)
  await agent.close()

  const decisions = logs.filter((l) => l.msg === 'decision' && l.app === 'admin-tls' && l.path === '/' && l.device_id === 'alice-laptop')
  t.same(decisions.map((l) => [l.status, l.device_trust]), [[403, 'known'], [200, 'managed'], [403, 'known']], 'the decision log names the device and its level')
})

t.test('bob (contractors) is denied the admin app and the wiki admin pages, with explanations', async (t) => {
  const bob = await newPage()
  await bob.goto(`${demo.adminAppUrl}/`)
  await signInAtIdp(bob, 'bob', demo.adminAppUrl)
  const text = await bob.textContent('main') ?? ''
  t.match(await bob.textContent('h1'), 'Access denied')
  t.match(text, /bob@example\.com/)
  t.match(text, /default-deny/, 'names the deciding rule')
  t.match(text, /engineers-on-managed-devices/, 'names the rule that would have allowed')
  t.match(text, /engineering/, 'names the missing group')
  t.match(text, /Request id/)
  await shot(bob, '07-deny-admin-app-bob', 'deny.png')
  const again = await bob.goto(`${demo.adminAppUrl}/`)
  t.equal(again?.status(), 403)

  const wiki = await bob.goto(`${demo.wikiUrl}/`)
  t.equal(wiki?.status(), 200, 'bob reads the wiki')
  t.equal(await bob.textContent('h1'), 'Welcome, bob@example.com')

  const wikiAdmin = await bob.goto(`${demo.wikiUrl}/admin/`)
  t.equal(wikiAdmin?.status(), 403)
  t.match(await bob.textContent('main'), /no-contractors-in-admin/)
  await shot(bob, '08-deny-wiki-admin-bob')
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
  await shot(carol, '09-deny-wiki-carol')
  const admin = await carol.goto(`${demo.adminAppUrl}/`)
  t.equal(admin?.status(), 403, 'engineering, but no device: the admin app stays closed')
  t.match(await carol.textContent('main'), /no device was identified/)
  await carol.context().close()
})

t.test('alice signs out and is asked to sign in again', async (t) => {
  await alice.goto(`${demo.wikiUrl}/`)
  await Promise.all([alice.waitForURL(`${demo.authUrl}/.moatless/signed_out`), alice.click('#sign-out')])
  t.equal(await alice.textContent('h1'), 'Signed out')
  await shot(alice, '10-signed-out')

  await alice.goto(`${demo.wikiUrl}/`)
  await alice.waitForSelector('#sign-in')
  t.equal(new URL(alice.url()).origin, demo.idpIssuer, 'back at the IdP: the IdP session ended too')
  await shot(alice, '11-sign-in-again')
  const admin = await alice.goto(`${demo.adminAppUrl}/`)
  t.equal(new URL(alice.url()).origin, demo.idpIssuer, 'the admin app session ended as well')
  t.equal(admin?.status(), 200)
  await alice.goto(`${demo.adminTlsUrl}/`)
  await alice.waitForSelector('#sign-in')
  t.equal(new URL(alice.url()).origin, demo.idpIssuer, 'and on the HTTPS origin, served by the other listener')
  await alice.context().close()
})
