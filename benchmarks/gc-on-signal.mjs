// Preloaded (node --expose-gc --import) into the proxy for the memory measurement only: a full
// garbage collection on SIGUSR2, so that memory can be read as what is retained rather than
// what happens not to have been collected yet. Nothing in the proxy's own code changes.
process.on('SIGUSR2', () => { globalThis.gc?.() })
