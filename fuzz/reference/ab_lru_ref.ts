/**
 * Reference of bpf/ab_lru_ref.bpf.c (the benchmark's seed design, not an arbitrator): a UDP frame (a first
 * fragment counts: the parser classifies it as UDP) to feed_port with 36 optiq bytes present after the
 * UDP header (the UDP length is not consulted) is looked up by (session_id, sequence_number): seen →
 * XDP_DROP, else remembered → XDP_PASS. Everything else passes. No counters. The LRU (65536 entries)
 * never evicts within one input.
 */
import { parseFrame, type Arrival, type Expected, type ReferenceModel } from './parse.js'

export const config = { feedPort: 8080 }
export const rodata = { feed_port: config.feedPort }

export function createModel(): ReferenceModel & { keys(): Buffer[] } {
  const seen = new Map<string, Buffer>()
  return {
    classify(a: Arrival): Expected {
      const p = parseFrame(a.frame)
      if (p.cls !== 'udp' || p.dport !== config.feedPort || a.frame.length < p.payloadAt! + 36) {
        return { verdict: 'pass', path: `pass-${p.cls}`, counters: {} }
      }
      const f = Buffer.from(a.frame.buffer, a.frame.byteOffset, a.frame.length)
      const key = Buffer.alloc(16)
      key.writeBigUInt64LE(BigInt(f.readUInt32LE(p.payloadAt! + 4)), 0)
      key.writeBigUInt64LE(BigInt(f.readUInt32LE(p.payloadAt! + 8)), 8)
      const id = key.toString('hex')
      if (seen.has(id)) return { verdict: 'drop', path: 'seen', counters: {} }
      seen.set(id, key)
      return { verdict: 'pass', path: 'first', counters: {} }
    },
    reset: () => seen.clear(),
    keys: () => [...seen.values()],
  }
}
