/**
 * Reference of bpf/xdp_xsk_redirect.bpf.c from include/xdp_xsk_redirect.h: malformed → malformed; IPv4
 * fragments (first ones too) → passed_fragment; a frame matches when it is IPv4 UDP/TCP (or another
 * protocol when match_proto names it) to match_daddr (0 = any) with, for UDP/TCP, the destination port in
 * [match_dport_min, match_dport_max]; else passed_nomatch. A match is steered by (ifindex, queue):
 * no xsk_slots entry → passed_noslot, a slot without socket → passed_nosocket (the harness has no
 * AF_XDP socket, so `redirected` is never reached here). Every outcome is XDP_PASS.
 * Configurations fuzzed (input variant): UDP to 10.0.0.11 ports 8000..8010 (the xsk demo's shape), and
 * UDP or TCP to any address and port (match_proto 0, the defaults otherwise).
 * Assumption: match_proto 0 means "UDP or TCP" (header text), so class ipv4 never matches then.
 */
import { parseFrame, type Arrival, type Expected, type ReferenceModel } from './parse.js'

export interface RedirectConfig {
  matchProto: number
  dportMin: number
  dportMax: number
  /** host order, 0 = any */
  daddr: number
}

export const configs: RedirectConfig[] = [
  { matchProto: 17, dportMin: 8000, dportMax: 8010, daddr: 0x0a00000b },
  { matchProto: 0, dportMin: 0, dportMax: 65535, daddr: 0 },
]

export function rodataOf(config: RedirectConfig): Record<string, number | Uint8Array> {
  const daddr = Buffer.alloc(4)
  daddr.writeUInt32BE(config.daddr)
  return { match_proto: config.matchProto, match_dport_min: config.dportMin, match_dport_max: config.dportMax, match_daddr: daddr }
}

export function createModel(config: RedirectConfig): ReferenceModel {
  return {
    classify(a: Arrival): Expected {
      const p = parseFrame(a.frame)
      const base = { rx: 1n, rx_bytes: BigInt(a.frame.length) }
      const pass = (path: string, counter: string): Expected => ({ verdict: 'pass', path, counters: { ...base, [counter]: 1n } })
      if (p.cls === 'malformed') return pass('malformed', 'malformed')
      if (p.cls === 'ipv4-fragment' || (p.saddr !== undefined && p.fragment !== 'none')) return pass('fragment', 'passed_fragment')
      const ipv4 = p.cls === 'udp' || p.cls === 'tcp' || p.cls === 'ipv4'
      let match = ipv4 && (config.daddr === 0 || p.daddr === config.daddr)
      if (match && config.matchProto === 0) match = p.cls !== 'ipv4'
      else if (match) match = p.protocol === config.matchProto
      if (match && p.cls !== 'ipv4') match = p.dport! >= config.dportMin && p.dport! <= config.dportMax
      if (!match) return pass(`nomatch-${p.cls}`, 'passed_nomatch')
      const steer = a.lineB ? 'passed_noslot' : 'passed_nosocket'
      return { verdict: 'pass', path: `match-${steer}`, counters: { ...base, matched: 1n, [steer]: 1n } }
    },
    reset: () => {},
  }
}
