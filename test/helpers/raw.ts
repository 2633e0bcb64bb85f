import { connect } from 'node:net'

/** Sends bytes exactly as given (no client-side normalization) and returns the raw response. */
export async function rawRequest (port: number, text: string, timeoutMs = 3000): Promise<{ status: number; head: string; body: string; raw: string }> {
  return await new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1')
    let data = ''
    const done = (): void => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data)
      const idx = data.indexOf('\r\n\r\n')
      resolve({ status: m === null ? 0 : Number(m[1]), head: idx === -1 ? data : data.slice(0, idx), body: idx === -1 ? '' : data.slice(idx + 4), raw: data })
    }
    const timer = setTimeout(() => { sock.destroy(); done() }, timeoutMs)
    sock.on('data', (d) => {
      data += d.toString('latin1')
      // One response is enough; close once we have headers and the advertised body.
      const idx = data.indexOf('\r\n\r\n')
      if (idx !== -1) {
        const cl = /content-length: *(\d+)/i.exec(data.slice(0, idx))
        if (cl !== null && data.length - idx - 4 >= Number(cl[1])) { clearTimeout(timer); sock.destroy(); done() }
      }
    })
    sock.on('end', () => { clearTimeout(timer); done() })
    sock.on('error', (e) => { clearTimeout(timer); if (data.length > 0) done(); else reject(e) })
    sock.write(text)
  })
}
