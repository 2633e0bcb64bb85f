/** Public API of the config module: schema and types, durations, loading and error reporting. */
export * from './schema.js'
export * from './duration.js'
export * from './load.js'
