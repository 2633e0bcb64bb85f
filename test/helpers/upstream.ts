/**
 * A real upstream app for the proxy to forward to: node:http on 127.0.0.1, port 0.
 *
 * - every request is recorded in `requests` and answered 200 JSON { method, url, headers, body }
 * - `/slow?ms=N` answers after N ms
 * - `/status/N` answers with status N (same JSON body, none for 204/304)
 * - a websocket upgrade on any path is accepted, recorded (method GET, with the upgrade
 *   headers) and echoes every message; `sockets` lists the open server-side websockets
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

import { WebSocketServer, type WebSocket } from 'ws'

export interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: string
}

export interface Upstream {
  /** http://127.0.0.1:PORT */
  url: string
  port: number
  requests: Seen[]
  /** The open server-side websockets. */
  readonly sockets: WebSocket[]
  close(): Promise<void>
}

export async function startUpstream(): Promise<Upstream> {
  const requests: Seen[] = []
  const sockets = new Set<WebSocket>()
  const timers = new Set<NodeJS.Timeout>()
  const wss = new WebSocketServer({ noServer: true })

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body }
      requests.push(seen)
      const url = new URL(seen.url, 'http://upstream.invalid')
      const statusMatch = /^\/status\/(\d{3})$/.exec(url.pathname)
      const status = statusMatch?.[1] === undefined ? 200 : Number(statusMatch[1])
      const answer = () => {
        if (res.destroyed) return
        if (status === 204 || status === 304) {
          res.writeHead(status).end()
          return
        }
        const json = JSON.stringify({ method: seen.method, url: seen.url, headers: seen.headers, body })
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) }).end(json)
      }
      if (url.pathname === '/slow') {
        const timer = setTimeout(() => {
          timers.delete(timer)
          answer()
        }, Number(url.searchParams.get('ms') ?? '1000'))
        timers.add(timer)
        return
      }
      answer()
    })
  })

  server.on('upgrade', (req, socket, head) => {
    requests.push({ method: 'GET', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '' })
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws)
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
      ws.on('close', () => sockets.delete(ws))
      ws.on('error', () => sockets.delete(ws))
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get sockets() {
      return [...sockets]
    },
    async close() {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      for (const ws of sockets) ws.terminate()
      sockets.clear()
      wss.close()
      if (!server.listening) return
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    },
  }
}
