/**
 * Reference of bpf/fix_steer.bpf.c from include/fix_steer.h: malformed → malformed; IPv4 fragments →
 * passed_fragment; a VLAN-tagged frame → passed_nomatch (the userspace TCP takes untagged frames only); IPv4 TCP from remote_ip:remote_port to local_ip:local_port → matched_tcp; an ARP frame
 * (ethertype 0x0806) shorter than its 28-byte Ethernet/IPv4 body → malformed,
 * an ARP request (htype 1, ptype 0x0800, hlen 6, plen 4, op 1) whose target address is local_ip →
 * matched_arp (replies and other targets → passed_nomatch); everything else → passed_nomatch. Matches are
 * steered like xdp_xsk_redirect (noslot / nosocket, XDP_PASS without a socket).
 * Configuration fuzzed (the fix test bed's): local 10.0.3.1:40000, remote 10.0.3.2:9878.
 */
import { parseFrame, type Arrival, type Expected, type ReferenceModel } from './parse.js'

export const config = { localIp: 0x0a000301, remoteIp: 0x0a000302, localPort: 40000, remotePort: 9878 }
export const rodata = {
  local_ip: Buffer.from([10, 0, 3, 1]),
  remote_ip: Buffer.from([10, 0, 3, 2]),
  local_port: config.localPort,
  remote_port: config.remotePort,
}

function arpForUs(f: Uint8Array): 'yes' | 'no' | 'short' {
  const at = 14
  if (f.length < at + 28) return 'short'
  const be16 = (o: number): number => (f[at + o]! << 8) | f[at + o + 1]!
  if (be16(0) !== 1 || be16(2) !== 0x0800 || f[at + 4] !== 6 || f[at + 5] !== 4 || be16(6) !== 1) return 'no'
  const target = ((f[at + 24]! << 24) | (f[at + 25]! << 16) | (f[at + 26]! << 8) | f[at + 27]!) >>> 0
  return target === config.localIp ? 'yes' : 'no'
}

export function createModel(): ReferenceModel {
  return {
    classify(a: Arrival): Expected {
      const p = parseFrame(a.frame)
      const pass = (path: string, counter: string): Expected => ({ verdict: 'pass', path, counters: { rx: 1n, [counter]: 1n } })
      if (p.cls === 'malformed') return pass('malformed', 'malformed')
      if (p.cls === 'ipv4-fragment' || (p.saddr !== undefined && p.fragment !== 'none')) return pass('fragment', 'passed_fragment')
      if (p.vlanCount > 0) return pass('tagged', 'passed_nomatch')
      let matched: string
      if (p.cls === 'tcp' && p.daddr === config.localIp && p.saddr === config.remoteIp && p.dport === config.localPort && p.sport === config.remotePort) {
        matched = 'matched_tcp'
      } else if (p.cls === 'not-ip' && p.ethertype === 0x0806) {
        const arp = arpForUs(a.frame)
        if (arp === 'short') return pass('arp-short', 'malformed')
        if (arp === 'no') return pass('arp-other', 'passed_nomatch')
        matched = 'matched_arp'
      } else return pass(`nomatch-${p.cls}`, 'passed_nomatch')
      const steer = a.lineB ? 'passed_noslot' : 'passed_nosocket'
      return { verdict: 'pass', path: `${matched}-${steer}`, counters: { rx: 1n, [matched]: 1n, [steer]: 1n } }
    },
    reset: () => {},
  }
}
