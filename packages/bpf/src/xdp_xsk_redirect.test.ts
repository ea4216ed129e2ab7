import t, { type Test } from 'tap'
import { bpfObjectPath, encodeXskSlotKey } from '@kbx/ffi'
import { parseIPv4 } from '@kbx/net'
import { BpfObject, readCounters, resolveIfindex, type BpfMap } from './index.js'
import { runFixtures, type XdpFixture } from './testing/index.js'
import * as F from './testing/frames.js'
import { createNetns, createVeth } from './testing/netns.js'
import { throwsErrno } from './testing/assert.js'

const LO = resolveIfindex('lo')
const onLo = { ingressIfindex: LO, rxQueueIndex: 0 }
const everyRun = (f: XdpFixture) => ({ rx: 1n, rx_bytes: BigInt(f.data.length) })

const MATCHED = { matched: 1n, passed_nosocket: 1n }
const NOMATCH = { passed_nomatch: 1n }
const MALFORMED = { malformed: 1n }
const FRAGMENT = { passed_fragment: 1n }

function openRedirect(rodata: Record<string, number | Uint8Array> = {}): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  t.teardown(() => obj.close())
  for (const [name, value] of Object.entries(rodata)) obj.setRodata(name, value)
  obj.load()
  return obj
}

function addSlot(obj: BpfObject, ifindex: number, queue: number, slot: number): void {
  const value = Buffer.alloc(4)
  value.writeUInt32LE(slot)
  obj.map('xsk_slots').update(encodeXskSlotKey(ifindex, queue), value)
}

/** IPv4 address in network byte order, as match_daddr wants it. */
function wireIPv4(s: string): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(parseIPv4(s))
  return b
}

function fixture(name: string, data: Buffer, counters: Record<string, bigint>): XdpFixture {
  return { name, data, verdict: 'pass', ctx: onLo, counters }
}

function checkInvariants(tt: Test, stats: BpfMap): void {
  const c = readCounters(stats)
  tt.equal(c['rx'], (c['malformed'] ?? 0n) + (c['passed_fragment'] ?? 0n) + (c['passed_nomatch'] ?? 0n) + (c['matched'] ?? 0n), 'rx = malformed + fragment + nomatch + matched')
  tt.equal(c['matched'], (c['passed_noslot'] ?? 0n) + (c['passed_nosocket'] ?? 0n) + (c['redirected'] ?? 0n), 'matched = noslot + nosocket + redirected')
  tt.equal(c['redirected'], 0n, 'nothing redirected without sockets')
}

t.test('counters are named from BTF in header order', async (t) => {
  const obj = openRedirect()
  t.same(
    obj.map('stats').valueFields().map((f) => [f.name, f.offset, f.size]),
    [
      ['rx', 0, 8],
      ['rx_bytes', 8, 8],
      ['matched', 16, 8],
      ['redirected', 24, 8],
      ['redirected_bytes', 32, 8],
      ['passed_nomatch', 40, 8],
      ['passed_noslot', 48, 8],
      ['passed_nosocket', 56, 8],
      ['passed_fragment', 64, 8],
      ['malformed', 72, 8],
    ],
  )
  t.same(
    obj.maps().map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries]).sort(),
    [
      ['.rodata', 'array', 4, 12, 1],
      ['stats', 'percpu_array', 4, 80, 1],
      ['xsk_slots', 'hash', 8, 4, 64],
      ['xsks', 'xskmap', 4, 4, 64],
    ],
  )
})

t.test('default config: UDP, any port, any address', async (t) => {
  const obj = openRedirect()
  const prog = obj.program('kbx_xsk_redirect')
  const stats = obj.map('stats')
  t.same([...obj.rodata('match_proto')], [17], 'match_proto defaults to UDP')

  runFixtures(t, prog, [fixture('udp without a slot for lo:0', F.udp(), { matched: 1n, passed_noslot: 1n })], { stats, everyRun })
  addSlot(obj, LO, 0, 0)

  const basic = F.udp()
  const fixtures: XdpFixture[] = [
    fixture('udp, slot but no socket in xsks', basic, MATCHED),
    fixture('udp to port 1', F.udp({ dstPort: 1 }), MATCHED),
    fixture('udp to port 65535', F.udp({ dstPort: 65535 }), MATCHED),
    fixture('udp with DF set', F.udp({ dontFragment: true }), MATCHED),
    fixture('udp with one 802.1Q tag', F.udp({ vlans: [100] }), MATCHED),
    fixture('udp with 802.1ad + 802.1Q tags', F.udp({ vlans: [100, 200], outerVlanTpid: 0x88a8 }), MATCHED),
    fixture('udp with two 802.1Q tags', F.udp({ vlans: [100, 200] }), MATCHED),
    fixture('udp with three tags (a third is not parsed)', F.udp({ vlans: [1, 2, 3] }), NOMATCH),
    fixture('udp with 4 bytes of IPv4 options', F.udp({ options: F.ipOptions(4) }), MATCHED),
    fixture('udp with 40 bytes of IPv4 options (ihl 15)', F.udp({ options: F.ipOptions(40) }), MATCHED),
    fixture('udp padded to 60 bytes (Ethernet padding past IPv4 total length)', F.padded(F.udp({ payload: Buffer.from('x') })), MATCHED),
    fixture('udp length shorter than the IPv4 payload (kernel trims)', F.patchBytes(basic, 14 + 20 + 4, [0, 8]), MATCHED),
    fixture('tcp', F.tcp(), NOMATCH),
    fixture('icmp', F.icmpLike(), NOMATCH),
    fixture('arp request', F.arp('request'), NOMATCH),
    fixture('arp reply', F.arp('reply'), NOMATCH),
    fixture('ipv6 udp', F.udp6(), NOMATCH),
    fixture('ethertype 0x0000', F.patchBytes(basic, 12, [0, 0]), NOMATCH),
    fixture('first fragment (MF, offset 0, udp length of the whole datagram)', F.patchBytes(F.udp({ moreFragments: true }), 14 + 20 + 4, [0x05, 0xdc]), FRAGMENT),
    fixture('middle fragment (MF, offset 1480)', F.udp({ moreFragments: true, fragmentOffset: 1480 }), FRAGMENT),
    fixture('last fragment (offset 1480)', F.udp({ fragmentOffset: 1480 }), FRAGMENT),
    fixture('fragment with a VLAN tag', F.udp({ vlans: [7], fragmentOffset: 8 }), FRAGMENT),
    fixture('ipv6 header truncated', F.udp6().subarray(0, 14 + 39), MALFORMED),
    fixture('VLAN tag truncated', F.udp({ vlans: [100] }).subarray(0, 16), MALFORMED),
    fixture('second VLAN tag truncated', F.udp({ vlans: [100, 200] }).subarray(0, 20), MALFORMED),
    fixture('ihl 4', F.patchIpv4(basic, (ip) => (ip[0] = 0x44)), MALFORMED),
    fixture('version 6 under ethertype IPv4', F.patchIpv4(basic, (ip) => (ip[0] = 0x65)), MALFORMED),
    fixture('IPv4 total length past the frame', F.patchIpv4(basic, (ip) => ip.writeUInt16BE(ip.length + 1, 2)), MALFORMED),
    fixture('IPv4 total length shorter than the header', F.patchIpv4(basic, (ip) => ip.writeUInt16BE(19, 2)), MALFORMED),
    fixture('IPv4 total length without room for the udp header', F.patchIpv4(basic, (ip) => ip.writeUInt16BE(27, 2)), MALFORMED),
    fixture('options longer than the frame', F.udp({ options: F.ipOptions(40) }).subarray(0, 14 + 50), MALFORMED),
    fixture('udp length 7', F.patchBytes(basic, 14 + 20 + 4, [0, 7]), MALFORMED),
    fixture('udp length past the IPv4 payload', F.patchBytes(basic, 14 + 20 + 4, [0, 8 + 20]), MALFORMED),
  ]
  runFixtures(t, prog, fixtures, { stats, everyRun })

  const truncations: XdpFixture[] = []
  for (let length = 14; length < basic.length; length++) {
    truncations.push(fixture(`udp truncated to ${length} bytes`, basic.subarray(0, length), MALFORMED))
  }
  runFixtures(t, prog, truncations, { stats, everyRun })
  for (let length = 0; length < 14; length++) {
    throwsErrno(t, () => prog.testRun({ data: basic.subarray(0, length) }), 'EINVAL', `the kernel refuses a ${length}-byte test frame (shorter than Ethernet)`)
  }
  checkInvariants(t, stats)
  const c = readCounters(stats)
  t.equal(c['malformed'], BigInt(basic.length - 14 + 11), 'every truncation and broken header counted as malformed')
  t.equal(c['rx'], BigInt(1 + fixtures.length + truncations.length), 'rx counts every run')
})

t.test('TCP to 10.0.0.2 ports 5000-5010', async (t) => {
  const obj = openRedirect({ match_proto: 6, match_dport_min: 5000, match_dport_max: 5010, match_daddr: wireIPv4('10.0.0.2') })
  addSlot(obj, LO, 0, 3)
  const stats = obj.map('stats')
  const basic = F.tcp()
  runFixtures(
    t,
    obj.program(),
    [
      fixture('tcp 5000', basic, MATCHED),
      fixture('tcp 5010', F.tcp({ dstPort: 5010 }), MATCHED),
      fixture('tcp 4999', F.tcp({ dstPort: 4999 }), NOMATCH),
      fixture('tcp 5011', F.tcp({ dstPort: 5011 }), NOMATCH),
      fixture('tcp to 10.0.0.3', F.tcp({ dstIp: '10.0.0.3' }), NOMATCH),
      fixture('tcp from 10.0.0.2 to 10.0.0.1 (source is not the match)', F.tcp({ srcIp: '10.0.0.2', dstIp: '10.0.0.1' }), NOMATCH),
      fixture('udp 5000 (setRodata turned UDP matching off)', F.udp(), NOMATCH),
      fixture('tcp with 12 bytes of TCP options', F.tcp({ options: Buffer.from([2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]) }), MATCHED),
      fixture('tcp with IPv4 options', F.tcp({ ipOptions: F.ipOptions(8) }), MATCHED),
      fixture('tcp with a VLAN tag', F.tcp({ vlans: [42] }), MATCHED),
      fixture('tcp doff 4', F.patchBytes(basic, 14 + 20 + 12, [0x40]), MALFORMED),
      fixture('tcp doff 15 past the frame', F.patchBytes(basic, 14 + 20 + 12, [0xf0]), MALFORMED),
      fixture('tcp header truncated', basic.subarray(0, 14 + 20 + 19), MALFORMED),
    ],
    { stats, everyRun },
  )
  checkInvariants(t, stats)
})

t.test('any of UDP/TCP to port 53', async (t) => {
  const obj = openRedirect({ match_proto: 0, match_dport_min: 53, match_dport_max: 53 })
  addSlot(obj, LO, 0, 1)
  runFixtures(
    t,
    obj.program(),
    [
      fixture('udp 53', F.udp({ dstPort: 53 }), MATCHED),
      fixture('tcp 53', F.tcp({ dstPort: 53 }), MATCHED),
      fixture('udp 54', F.udp({ dstPort: 54 }), NOMATCH),
      fixture('icmp (no ports, not UDP/TCP)', F.icmpLike(), NOMATCH),
    ],
    { stats: obj.map('stats'), everyRun },
  )
})

t.test('another IPv4 protocol number matches without ports', async (t) => {
  const obj = openRedirect({ match_proto: 1 })
  addSlot(obj, LO, 0, 1)
  runFixtures(
    t,
    obj.program(),
    [fixture('icmp', F.icmpLike(), MATCHED), fixture('udp', F.udp(), NOMATCH)],
    { stats: obj.map('stats'), everyRun },
  )
})

t.test('setRodata checks names and sizes', async (t) => {
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  t.teardown(() => obj.close())
  t.throws(() => obj.setRodata('match_port', 1), /no \.rodata variable "match_port"/)
  t.throws(() => obj.setRodata('match_proto', 256), /does not fit in 1 byte/)
  t.throws(() => obj.setRodata('match_daddr', Buffer.alloc(3)), /needs 4 bytes/)
  obj.setRodata('match_dport_max', 0xffff)
  obj.setRodata('match_daddr', wireIPv4('192.168.1.2'))
  t.same([...obj.rodata('match_daddr')], [192, 168, 1, 2], 'network order bytes kept as given')
  t.same([...obj.rodata('match_dport_max')], [0xff, 0xff])
  obj.load()
  t.throws(() => obj.setRodata('match_proto', 6), /already loaded/)
})

t.test('slots are per interface and rx queue (multi-queue veth)', async (t) => {
  const ns = createNetns(t)
  const veth = createVeth(ns, { queues: 4 })
  const obj = openRedirect()
  const prog = obj.program()
  const stats = obj.map('stats')
  ns.enter(() => {
    const ifindex = resolveIfindex(veth.a)
    addSlot(obj, ifindex, 2, 5)
    const frame = F.udp()
    runFixtures(
      t,
      prog,
      [
        { name: 'queue 2 has a slot (no socket)', data: frame, verdict: 'pass', ctx: { ingressIfindex: ifindex, rxQueueIndex: 2 }, counters: MATCHED },
        { name: 'queue 3 has none', data: frame, verdict: 'pass', ctx: { ingressIfindex: ifindex, rxQueueIndex: 3 }, counters: { matched: 1n, passed_noslot: 1n } },
        { name: 'lo queue 0 has none', data: frame, verdict: 'pass', ctx: onLo, counters: { matched: 1n, passed_noslot: 1n } },
      ],
      { stats, everyRun },
    )
    throwsErrno(t, () => prog.testRun({ data: frame, ctx: { ingressIfindex: ifindex, rxQueueIndex: 4 } }), 'EINVAL', 'the kernel refuses a queue beyond the interface')
  })
})
