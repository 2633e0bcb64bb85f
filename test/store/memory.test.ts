import t from 'tap'
import { MemoryStore } from '../../src/store/index.js'
import { storeContract } from './contract.js'

let clock = 1_700_000_000_000
const stores: MemoryStore[] = []
t.teardown(async () => { for (const s of stores) await s.close() })

storeContract(t, async () => {
  const store = new MemoryStore({ now: () => clock })
  stores.push(store)
  return { store, advance: async (ms) => { clock += ms } }
}, () => clock)
