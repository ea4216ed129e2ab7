export { Identity, Flood, Sink, mockTransactions, parseSolanaKeypair, readSolanaKeypair, ipv4NetworkOrder, KBX_QUIC_MAX_TX_SIZE } from './engine.js'
export type { FloodOptions, FloodStats, SinkOptions, SinkStats } from './engine.js'
export { base58, base58Decode } from './base58.js'
