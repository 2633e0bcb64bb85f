/** Sealer: only the exact text seal() wrote unseals; other spellings of the same bytes do not. */
import t from 'tap'
import { Sealer } from '../../src/authn/seal.js'

const sealer = new Sealer('seal-test-secret-0123456789abcdef-0123456789', 'cookie')

t.test('the text seal() wrote unseals; other spellings of the same bytes are refused', async (t) => {
  for (let n = 0; n < 6; n++) {
    // Values of several lengths, so the text ends on every base64 boundary.
    const value = { s: 'x'.repeat(40 + n), o: 'https://wiki.example.com' }
    const text = sealer.seal(value)
    t.same(sealer.unseal(text), value, `length ${text.length}`)
    const spellings = [
      text.slice(0, 10) + '!*.' + text.slice(10), // characters the decoder skips
      text.slice(0, 10) + ' ' + text.slice(10),
      text + '==', // padding
      text + '\n'
    ]
    const last = text.at(-1) as string
    for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') if (c !== last) spellings.push(text.slice(0, -1) + c) // other unused bits
    for (const s of spellings) if (sealer.unseal(s) !== null) t.fail(`accepted ${JSON.stringify(s.slice(-6))} (length ${s.length})`)
    t.pass(`length ${text.length}: ${spellings.length} other spellings refused`)
  }
})
