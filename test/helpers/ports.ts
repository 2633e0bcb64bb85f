import { createServer } from 'node:net'

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Prefer listening on port 0 directly;
 * use this only for things that must be told their port up front (redis-server, configs).
 */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0] as number
}

/**
 * `count` different free ports: each is held until all are found. (Asked for one after
 * another, a port closed a moment ago can be handed out again: a benchmark run once got the
 * same port for a proxy's listener and its admin listener.)
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer())
  try {
    const ports: number[] = []
    for (const server of servers) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      const address = server.address()
      if (address === null || typeof address === 'string') throw new Error('could not obtain a free port')
      ports.push(address.port)
    }
    return ports
  } finally {
    await Promise.all(servers.map(async (server) => await new Promise<void>((resolve) => { if (server.listening) server.close(() => resolve()); else resolve() })))
  }
}
