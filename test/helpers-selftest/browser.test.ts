import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'

import t from 'tap'

import { Browser, parseSetCookie } from '../helpers/browser.js'
import { parseForms } from '../helpers/idp-login.js'
import { createTestCa } from '../helpers/tls.js'

const names = (list: { name: string }[]) => list.map((c) => c.name).sort()

t.test('host-only vs Domain cookies', async (t) => {
  const b = new Browser()
  b.setCookie('http://app.example.test/', 'host=1')
  b.setCookie('http://app.example.test/', 'dom=1; Domain=example.test')
  b.setCookie('http://app.example.test/', 'dotted=1; Domain=.Example.TEST')
  b.setCookie('http://app.example.test/', 'foreign=1; Domain=other.test')
  b.setCookie('http://app.example.test/', 'sub=1; Domain=deep.app.example.test')

  t.same(names(b.cookies('http://app.example.test/')), ['dom', 'dotted', 'host'])
  t.same(names(b.cookies('http://example.test/')), ['dom', 'dotted'], 'host-only stays on its host')
  t.same(names(b.cookies('http://x.y.example.test/')), ['dom', 'dotted'])
  t.same(names(b.cookies('http://notexample.test/')), [], 'domain match is on label boundaries')
  t.same(b.cookies('http://other.test/'), [], 'a host cannot set cookies for another domain')
  t.same(names(b.cookies('http://app.example.test:8443/')), ['dom', 'dotted', 'host'], 'ports do not separate cookies')

  b.setCookie('http://127.0.0.1/', 'ip=1')
  b.setCookie('http://127.0.0.1/', 'ipdom=1; Domain=0.0.1')
  t.same(names(b.cookies('http://127.0.0.1/')), ['ip'])
})

t.test('Path: default path, path-match, order', async (t) => {
  const b = new Browser()
  b.setCookie('http://h.test/a/b/page', 'def=1')
  b.setCookie('http://h.test/', 'root=1; Path=/')
  b.setCookie('http://h.test/', 'deep=1; Path=/a/b')
  b.setCookie('http://h.test/', 'bad=1; Path=relative')
  // def: default path of /a/b/page is /a/b; bad: a Path not starting with / means the default path.
  t.same(names(b.cookies('http://h.test/a/b')), ['bad', 'deep', 'def', 'root'])
  t.same(names(b.cookies('http://h.test/a/b/c')), ['bad', 'deep', 'def', 'root'])
  t.same(names(b.cookies('http://h.test/a/bc')), ['bad', 'root'], 'no prefix match inside a segment')
  t.same(names(b.cookies('http://h.test/x')), ['bad', 'root'])
  t.equal(b.cookieHeader('http://h.test/a/b/c'), 'def=1; deep=1; root=1; bad=1', 'longer paths first, then older first')
})

t.test('expiry: Max-Age <= 0 and past Expires delete, Max-Age beats Expires', async (t) => {
  const b = new Browser()
  b.setCookie('http://h.test/', 'a=1')
  b.setCookie('http://h.test/', 'b=1; Max-Age=3600')
  b.setCookie('http://h.test/', 'c=1')
  t.same(names(b.cookies('http://h.test/')), ['a', 'b', 'c'])
  b.setCookie('http://h.test/', 'a=; Max-Age=0')
  b.setCookie('http://h.test/', 'b=; Max-Age=-1')
  b.setCookie('http://h.test/', 'c=; Expires=Thu, 01 Jan 1970 00:00:00 GMT')
  t.same(b.cookies('http://h.test/'), [])
  b.setCookie('http://h.test/', 'd=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60')
  t.same(names(b.cookies('http://h.test/')), ['d'])
  b.setCookie('http://h.test/', 'e=1; Max-Age=1')
  const e = b.storedCookies().find((c) => c.name === 'e')
  t.ok(e?.expires !== undefined && e.expires > Date.now())
  b.setCookie('http://h.test/', 'd=2; Path=/other; Max-Age=0')
  t.same(names(b.cookies('http://h.test/')), ['d', 'e'], 'deleting needs the same name, domain and path')
})

t.test('replacing keeps one cookie per name/domain/path', async (t) => {
  const b = new Browser()
  b.setCookie('http://h.test/', 's=1')
  b.setCookie('http://h.test/', 's=2')
  t.same(b.cookies('http://h.test/'), [{ name: 's', value: '2' }])
})

t.test('Secure and cookie prefixes', async (t) => {
  const b = new Browser()
  b.setCookie('http://h.test/', 'insecure_secure=1; Secure')
  t.same(b.cookies('https://h.test/'), [], 'an http response cannot set a Secure cookie')
  b.setCookie('https://h.test/', 'sec=1; Secure')
  t.same(names(b.cookies('https://h.test/')), ['sec'])
  t.same(b.cookies('http://h.test/'), [], 'Secure cookies are only sent over https')
  b.setCookie('http://h.test/', 'sec=overwritten')
  t.same(b.cookies('https://h.test/'), [{ name: 'sec', value: '1' }], 'http cannot overwrite a Secure cookie')

  b.setCookie('https://h.test/', '__Host-ok=1; Secure; Path=/')
  b.setCookie('https://h.test/', '__Host-nopath=1; Secure')
  b.setCookie('https://h.test/sub/x', '__Host-subpath=1; Secure; Path=/sub')
  b.setCookie('https://h.test/', '__Host-domain=1; Secure; Path=/; Domain=h.test')
  b.setCookie('https://h.test/', '__Host-insecure=1; Path=/')
  b.setCookie('http://h.test/', '__Host-http=1; Secure; Path=/')
  b.setCookie('https://h.test/', '__Secure-ok=1; Secure')
  b.setCookie('https://h.test/', '__Secure-no=1')
  t.same(names(b.cookies('https://h.test/')), ['__Host-ok', '__Secure-ok', 'sec'])
})

t.test('parseSetCookie ignores what RFC 6265 says to ignore', async (t) => {
  t.equal(parseSetCookie('novalue'), undefined)
  t.equal(parseSetCookie('=x'), undefined)
  t.match(parseSetCookie(' n = v ; HttpOnly; SameSite=Lax; Max-Age=abc'), { name: 'n', value: 'v', httpOnly: true, sameSite: 'Lax', expires: undefined })
  t.equal(parseSetCookie('n=a=b')?.value, 'a=b')
})

t.test('clearCookies', async (t) => {
  const b = new Browser()
  b.setCookie('http://h.test/', 'a=1')
  b.clearCookies()
  t.same(b.cookies('http://h.test/'), [])
})

t.test('live: every host name reaches resolveTo, Host is kept, cookies travel, redirects are followed', async (t) => {
  const seen: { host: string | undefined; cookie: string | undefined; method: string | undefined; url: string | undefined; body: string }[] = []
  const server = createHttpServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      seen.push({ host: req.headers.host, cookie: req.headers.cookie, method: req.method, url: req.url, body })
      route(req, res)
    })
  })
  await listen(server)
  t.teardown(() => closeServer(server))
  const port = (server.address() as AddressInfo).port
  const route = (req: IncomingMessage, res: ServerResponse) => {
    const host = (req.headers.host ?? '').split(':')[0]
    if (req.url === '/set') {
      res.writeHead(200, { 'set-cookie': [`only_${host}=1; Path=/`, `shared=${host}; Domain=localhost.test; Path=/`] }).end('ok')
    } else if (req.url === '/hop') {
      res.writeHead(302, { location: `http://b.localhost.test:${port}/see-other` }).end()
    } else if (req.url === '/see-other') {
      res.writeHead(303, { location: '/done' }).end()
    } else if (req.url === '/temp') {
      res.writeHead(307, { location: '/done' }).end()
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${host}`)
    }
  }

  const b = new Browser()
  t.teardown(() => b.close())
  const first = await b.request(`http://a.localhost.test:${port}/set`)
  t.equal(first.status, 200)
  t.same(first.headers['set-cookie']?.length, 2)
  t.equal(seen[0]?.host, `a.localhost.test:${port}`)

  const hello = await b.request(`http://b.localhost.test:${port}/`, { headers: { accept: 'text/plain' } })
  t.equal(hello.body, 'hello b.localhost.test')
  t.equal(seen.at(-1)?.cookie, 'shared=a.localhost.test', 'only the Domain cookie crosses hosts')

  const { final, chain } = await b.follow(`http://a.localhost.test:${port}/hop`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'x',
  })
  t.equal(final.status, 200)
  t.equal(final.url, `http://b.localhost.test:${port}/done`)
  t.same(
    chain.map((h) => h.status),
    [302, 303, 200],
  )
  t.same(
    seen.slice(-3).map((s) => s.method),
    ['POST', 'GET', 'GET'],
    'POST becomes GET after 302/303',
  )
  t.equal(seen.at(-1)?.body, '')

  const kept = await b.follow(`http://a.localhost.test:${port}/temp`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'keep' })
  t.equal(kept.final.status, 200)
  t.same(
    seen.slice(-1).map((s) => [s.method, s.body]),
    [['POST', 'keep']],
    '307 keeps method and body',
  )

  const stopped = await b.follow(`http://a.localhost.test:${port}/hop`, {}, 20, { stopBefore: (u) => u.hostname.startsWith('b.') })
  t.equal(stopped.final.status, 302, 'stopBefore leaves the redirect unfollowed')
  await t.rejects(b.follow(`http://a.localhost.test:${port}/hop`, {}, 1), /more than 1 redirects/)
})

t.test('live https with a custom CA, Secure cookies and a client certificate', async (t) => {
  const ca = await createTestCa()
  const serverCert = await ca.issue({ commonName: 'secure.localhost', dns: ['secure.localhost'] })
  const clientCert = await ca.issue({ commonName: 'device-1', usage: 'client' })
  const peers: (string | undefined)[] = []
  const server = createHttpsServer({ cert: serverCert.cert, key: serverCert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    peers.push(peer.fingerprint256 === undefined ? undefined : peer.fingerprint256.replaceAll(':', '').toLowerCase())
    res.writeHead(200, { 'set-cookie': '__Host-s=1; Secure; HttpOnly; Path=/; SameSite=Lax' }).end(`cookie: ${req.headers.cookie ?? ''}`)
  })
  await listen(server)
  t.teardown(() => closeServer(server))
  const port = (server.address() as AddressInfo).port

  const untrusting = new Browser()
  t.teardown(() => untrusting.close())
  await t.rejects(untrusting.request(`https://secure.localhost:${port}/`), 'the system roots do not trust the test CA')

  const b = new Browser({ ca: ca.cert, cert: clientCert.cert, key: clientCert.key })
  t.teardown(() => b.close())
  const one = await b.request(`https://secure.localhost:${port}/`)
  t.equal(one.status, 200)
  t.same(names(b.cookies(`https://secure.localhost:${port}/`)), ['__Host-s'])
  t.same(b.cookies(`http://secure.localhost:${port}/`), [])
  const two = await b.request(`https://secure.localhost:${port}/`)
  t.equal(two.body, 'cookie: __Host-s=1')
  t.equal(peers.at(-1), clientCert.fingerprint, 'the client certificate reached the server')

  const wrongName = new Browser({ ca: ca.cert })
  t.teardown(() => wrongName.close())
  await t.rejects(wrongName.request(`https://other.localhost:${port}/`), 'the certificate is checked against the URL host name')
})

t.test('parseForms reads forms and inputs', async (t) => {
  const forms = parseForms(`<form id="f" method="post" action="/x?a=1&amp;b=2"><input type="hidden" name="xsrf" value="t&quot;k"/>
    <input name=username value=''><input type="password" name="password"></form><form action='/y'></form>`)
  t.same(forms, [
    { id: 'f', method: 'post', action: '/x?a=1&b=2', inputs: { xsrf: 't"k', username: '', password: '' } },
    { method: 'get', action: '/y', inputs: {} },
  ])
})

function listen(server: import('node:net').Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
}

async function closeServer(server: import('node:http').Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}
