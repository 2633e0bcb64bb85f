import { randomFillSync } from 'node:crypto'

/** Ids made per batch: one `randomFillSync` of 4 KiB, as Node's own `randomUUID()` batches 128. */
const BATCH = 256
const HEX = Buffer.from('0123456789abcdef', 'latin1')
const random = Buffer.alloc(16 * BATCH)
const text = Buffer.alloc(36 * BATCH)
let next = BATCH

/** Fills `text` with BATCH random UUIDs (version 4, RFC 9562 5.4), 36 ASCII bytes each. */
function refill (): void {
  randomFillSync(random)
  let o = 0
  for (let i = 0; i < BATCH; i++) {
    const r = i * 16
    random[r + 6] = ((random[r + 6] as number) & 0x0f) | 0x40 // version 4
    random[r + 8] = ((random[r + 8] as number) & 0x3f) | 0x80 // variant 10
    for (let j = 0; j < 16; j++) {
      if (j === 4 || j === 6 || j === 8 || j === 10) text[o++] = 0x2d // '-'
      const b = random[r + j] as number
      text[o++] = HEX[b >> 4] as number
      text[o++] = HEX[b & 0x0f] as number
    }
  }
  next = 0
}

/**
 * A random UUID for a request id (X-Request-Id, the decision line, error bodies): what
 * `crypto.randomUUID()` returns, made with one string allocation. `randomUUID()` builds each
 * id from 20 concatenated pieces (~580 bytes of intermediate strings a request, measured with
 * the sampling heap profiler under load); here a batch is formatted into one buffer and each
 * id is a 36-byte slice of it. Random, not a counter: an id must not tell how many requests a
 * replica has served.
 */
export function requestId (): string {
  if (next === BATCH) refill()
  const at = next++ * 36
  return text.toString('latin1', at, at + 36)
}
