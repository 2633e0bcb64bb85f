/** `npm run docs:config`: regenerates docs/config.md from the schema. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderConfigReference } from './doc.js'

const target = fileURLToPath(new URL('../../docs/config.md', import.meta.url))
mkdirSync(dirname(target), { recursive: true })
writeFileSync(target, renderConfigReference())
console.log(`wrote ${target}`)
