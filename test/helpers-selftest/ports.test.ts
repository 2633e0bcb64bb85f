/** freePorts: different ports, each free again once it is returned. */
import t from 'tap'
import { createServer } from 'node:net'
import { freePort, freePorts } from '../helpers/ports.js'

t.test('freePorts(n): n different ports, every one of them free to listen on', async (t) => {
  for (let round = 0; round < 20; round++) {
    const ports = await freePorts(10)
    t.equal(new Set(ports).size, 10, `round ${round}: all different`)
    const servers = await Promise.all(ports.map(async (port) => await new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => resolve(s))
    })))
    await Promise.all(servers.map(async (s) => await new Promise<void>((resolve) => s.close(() => resolve()))))
  }
  t.ok((await freePort()) > 0)
})
