import t from 'tap'
import { request } from 'undici'
import WebSocket from 'ws'

import { startUpstream } from '../helpers/upstream.js'

t.test('echoes and records requests', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  t.equal(upstream.url, `http://127.0.0.1:${upstream.port}`)

  const res = await request(`${upstream.url}/hello?x=1`, {
    method: 'POST',
    headers: { 'x-custom': 'a', 'content-type': 'text/plain' },
    body: 'payload',
  })
  t.equal(res.statusCode, 200)
  const json = (await res.body.json()) as { method: string; url: string; headers: Record<string, string>; body: string }
  t.equal(json.method, 'POST')
  t.equal(json.url, '/hello?x=1')
  t.equal(json.headers['x-custom'], 'a')
  t.equal(json.body, 'payload')

  t.equal(upstream.requests.length, 1)
  const seen = upstream.requests[0]
  t.equal(seen?.body, 'payload')
  t.ok(seen?.rawHeaders.includes('x-custom'), 'raw header names as sent')

  const teapot = await request(`${upstream.url}/status/418`)
  t.equal(teapot.statusCode, 418)
  await teapot.body.dump()
  const empty = await request(`${upstream.url}/status/204`)
  t.equal(empty.statusCode, 204)
  t.equal(await empty.body.text(), '')
})

t.test('/slow waits', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const started = Date.now()
  const res = await request(`${upstream.url}/slow?ms=200`)
  await res.body.dump()
  t.ok(Date.now() - started >= 190, 'took at least the requested time')
})

t.test('close() does not wait for pending slow requests', async (t) => {
  const upstream = await startUpstream()
  const pending = request(`${upstream.url}/slow?ms=60000`).catch((e: unknown) => e)
  await waitFor(() => upstream.requests.length === 1)
  const started = Date.now()
  await upstream.close()
  t.ok(Date.now() - started < 1000)
  t.type(await pending, Error, 'the client sees the connection go')
})

t.test('websocket upgrades are recorded and echo', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const ws = new WebSocket(`ws://127.0.0.1:${upstream.port}/socket?room=1`, { headers: { 'x-ws': 'yes' } })
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))))
  ws.send('ping')
  t.equal(await echoed, 'ping')

  const seen = upstream.requests.at(-1)
  t.equal(seen?.method, 'GET')
  t.equal(seen?.url, '/socket?room=1')
  t.equal(seen?.headers.upgrade, 'websocket')
  t.equal(seen?.headers['x-ws'], 'yes')
  t.equal(upstream.sockets.length, 1)

  const closed = new Promise((resolve) => ws.once('close', resolve))
  await upstream.close()
  await closed
  t.equal(upstream.sockets.length, 0, 'close() terminates websockets')
})

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}
