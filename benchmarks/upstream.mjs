// The local origin every target forwards to: 1 KiB body, keep-alive.
import { createServer } from 'node:http'
const body = Buffer.alloc(1024, 'x')
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.send?.({ port: server.address().port })
})
