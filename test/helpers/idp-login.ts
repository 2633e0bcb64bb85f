/**
 * Drives the demo IdP's pages (src/demo/idp.ts) the way a person with a browser would: read the
 * form from the HTML, submit it, follow redirects. Works for any IdP page with an HTML form
 * carrying `username` and `password` fields.
 */
import type { Browser, BrowserResponse, Hop } from './browser.js'

export interface HtmlForm {
  id?: string
  method: string
  /** As written in the HTML (resolve it against the page URL). */
  action: string
  /** name → value of every <input> with a name (hidden ones included). */
  inputs: Record<string, string>
}

export interface IdpLeave {
  /** The first URL outside the IdP's origin, not yet requested: continue with browser.follow(url). */
  url: string
  chain: Hop[]
}

/** The IdP kept the browser on its own pages (wrong password, disabled account, error page). */
export class IdpSignInError extends Error {
  constructor(
    message: string,
    readonly response: BrowserResponse,
    readonly chain: Hop[],
  ) {
    super(message)
    this.name = 'IdpSignInError'
  }
}

const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }
const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * Signs in on the IdP's interaction page (where a redirect chain from the proxy or an RP
 * lands): GETs the form, POSTs the credentials to the form's action, and follows redirects
 * until they leave the IdP's origin. Throws IdpSignInError (with the page's error message)
 * when the IdP answers with a page instead of sending the browser back.
 */
export async function signInAtIdp(browser: Browser, idpInteractionUrl: string, username: string, password: string): Promise<IdpLeave> {
  const chain: Hop[] = []
  const page = await browser.request(idpInteractionUrl, { headers: { accept: 'text/html' } })
  chain.push({ url: page.url, status: page.status })
  if (page.status !== 200) {
    throw new IdpSignInError(`expected the IdP sign-in page at ${idpInteractionUrl}, got ${page.status}: ${page.body.slice(0, 300)}`, page, chain)
  }
  const form = parseForms(page.body).find((f) => 'username' in f.inputs && 'password' in f.inputs)
  if (form === undefined) throw new IdpSignInError(`no sign-in form at ${idpInteractionUrl}`, page, chain)
  const body = new URLSearchParams({ ...form.inputs, username, password }).toString()
  const posted = await browser.request(new URL(form.action || page.url, page.url).href, {
    method: form.method.toUpperCase(),
    headers: FORM_HEADERS,
    body,
  })
  return followUntilLeaving(browser, posted, new URL(idpInteractionUrl).origin, chain)
}

/**
 * RP-initiated logout at the IdP: GETs the end_session URL (with id_token_hint,
 * post_logout_redirect_uri, ...), submits the confirmation form a browser would auto-submit,
 * and follows redirects. `url` is where the IdP sends the browser back to (the
 * post_logout_redirect_uri, with state), or undefined when it shows its own signed-out page.
 */
export async function signOutAtIdp(
  browser: Browser,
  endSessionUrl: string,
): Promise<{ url: string | undefined; chain: Hop[]; response: BrowserResponse }> {
  const chain: Hop[] = []
  const page = await browser.request(endSessionUrl, { headers: { accept: 'text/html' } })
  chain.push({ url: page.url, status: page.status })
  const form = page.status === 200 ? parseForms(page.body).find((f) => f.method.toLowerCase() === 'post') : undefined
  if (form === undefined) {
    throw new IdpSignInError(`expected the IdP sign-out page at ${endSessionUrl}, got ${page.status}: ${page.body.slice(0, 300)}`, page, chain)
  }
  const posted = await browser.request(new URL(form.action || page.url, page.url).href, {
    method: 'POST',
    headers: FORM_HEADERS,
    body: new URLSearchParams({ logout: 'yes', ...form.inputs }).toString(),
  })
  try {
    const left = await followUntilLeaving(browser, posted, new URL(endSessionUrl).origin, chain)
    return { url: left.url, chain: left.chain, response: posted }
  } catch (err) {
    if (err instanceof IdpSignInError && err.response.status === 200) return { url: undefined, chain, response: err.response }
    throw err
  }
}

async function followUntilLeaving(browser: Browser, first: BrowserResponse, idpOrigin: string, chain: Hop[]): Promise<IdpLeave> {
  let res = first
  for (let i = 0; i < 20; i++) {
    const location = typeof res.headers.location === 'string' ? res.headers.location : undefined
    chain.push({ url: res.url, status: res.status, ...(location === undefined ? {} : { location }) })
    if (!REDIRECTS.has(res.status) || location === undefined) {
      const shown = pageError(res.body)
      throw new IdpSignInError(
        `the IdP answered ${res.status} at ${res.url} instead of redirecting back${shown === undefined ? '' : `: ${shown}`}`,
        res,
        chain,
      )
    }
    const next = new URL(location, res.url)
    if (next.origin !== idpOrigin) return { url: next.href, chain }
    res = await browser.request(next.href, { headers: { accept: 'text/html' } })
  }
  throw new IdpSignInError('too many redirects within the IdP', res, chain)
}

/** The error message an IdP page shows (`class="error"`), if any. */
export function pageError(html: string): string | undefined {
  const m = /<[a-z]+[^>]*class="[^"]*\berror\b[^"]*"[^>]*>([\s\S]*?)<\/[a-z]+>/i.exec(html)
  return m?.[1] === undefined ? undefined : decodeEntities(m[1].replace(/<[^>]+>/g, '').trim())
}

/** The forms of an HTML page, as far as a test needs them (no script, no nesting tricks). */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = parseAttributes(m[1] ?? '')
    const inputs: Record<string, string> = {}
    for (const input of (m[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const a = parseAttributes(input[1] ?? '')
      if (a.name !== undefined) inputs[a.name] = a.value ?? ''
    }
    forms.push({
      ...(attrs.id === undefined ? {} : { id: attrs.id }),
      method: attrs.method ?? 'get',
      action: attrs.action ?? '',
      inputs,
    })
  }
  return forms
}

function parseAttributes(source: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of source.matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    const name = (m[1] ?? '').toLowerCase()
    out[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return out
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    const lower = e.toLowerCase()
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16))
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10))
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[lower] ?? _
  })
}
