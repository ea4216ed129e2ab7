// bpf/fix_steer.bpf.c through BPF_PROG_TEST_RUN: only our connection's segments and ARP for our address
// are steered (with a slot but no socket they pass, counted as passed_nosocket); everything else passes
// untouched, truncated frames included.
import t from 'tap'
import { BpfObject, readCounters, resolveIfindex } from '@kbx/bpf'
import { runFixtures } from '@kbx/bpf/testing'
import type { XdpFixture } from '@kbx/bpf/testing'
import { bpfObjectPath } from '@kbx/ffi'
import { TcpFlags, buildArpFrame, buildTcpFrame, buildUdp6Frame, buildUdpFrame, parseIPv4 } from '@kbx/net'

const LO = resolveIfindex('lo')
const onLo = { ingressIfindex: LO, rxQueueIndex: 0 }
const LOCAL = { ip: '10.0.3.1', port: 40001, mac: '02:00:00:00:03:01' }
const REMOTE = { ip: '10.0.3.2', port: 9878, mac: '02:00:00:00:03:02' }

function wireIPv4(s: string): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(parseIPv4(s))
  return b
}

function open(): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('fix_steer'))
  t.teardown(() => obj.close())
  obj.setRodata('local_ip', wireIPv4(LOCAL.ip))
  obj.setRodata('remote_ip', wireIPv4(REMOTE.ip))
  obj.setRodata('local_port', LOCAL.port)
  obj.setRodata('remote_port', REMOTE.port)
  obj.load()
  const key = Buffer.alloc(8)
  key.writeUInt32LE(LO, 0)
  key.writeUInt32LE(0, 4)
  obj.map('xsk_slots').update(key, Buffer.alloc(4))
  return obj
}

function segment(o: { srcIp?: string; dstIp?: string; srcPort?: number; dstPort?: number; payload?: Buffer; vlans?: number[] } = {}): Buffer {
  return buildTcpFrame({
    ...(o.vlans ? { vlans: o.vlans } : {}),
    srcMac: REMOTE.mac,
    dstMac: LOCAL.mac,
    srcIp: o.srcIp ?? REMOTE.ip,
    dstIp: o.dstIp ?? LOCAL.ip,
    srcPort: o.srcPort ?? REMOTE.port,
    dstPort: o.dstPort ?? LOCAL.port,
    seq: 1000,
    ack: 2000,
    flags: TcpFlags.ACK | TcpFlags.PSH,
    window: 65535,
    payload: o.payload ?? Buffer.from('8=FIX.4.4\x019=5\x0135=0\x0110=000\x01'),
  })
}

const arp = (targetIp: string) => buildArpFrame({ op: 'request', senderMac: REMOTE.mac, senderIp: REMOTE.ip, targetMac: '00:00:00:00:00:00', targetIp })
const ours = { matched_tcp: 1n, passed_nosocket: 1n }
const nomatch = { passed_nomatch: 1n }
const pass = (name: string, data: Buffer, counters: Record<string, bigint>): XdpFixture => ({ name, data, verdict: 'pass', ctx: onLo, counters })

t.test('our segments and ARP requests for our address are steered; everything else passes untouched', async (t) => {
  const obj = open()
  const stats = obj.map('stats')
  runFixtures(
    t,
    obj.program('kbx_fix_steer'),
    [
      pass('our segment (slot, no socket)', segment(), ours),
      pass('our SYN-ACK without payload', segment({ payload: Buffer.alloc(0) }), ours),
      pass('ARP for our address (slot, no socket)', arp(LOCAL.ip), { matched_arp: 1n, passed_nosocket: 1n }),
      pass('ARP for another address', arp('10.0.3.9'), nomatch),
      pass('ARP reply to our address (the kernel asked)', buildArpFrame({ op: 'reply', senderMac: REMOTE.mac, senderIp: REMOTE.ip, targetMac: LOCAL.mac, targetIp: LOCAL.ip }), nomatch),
      pass('another local port', segment({ dstPort: LOCAL.port + 1 }), nomatch),
      pass('another remote port', segment({ srcPort: 9879 }), nomatch),
      pass('another local address', segment({ dstIp: '10.0.3.3' }), nomatch),
      pass('another remote address', segment({ srcIp: '10.0.3.4' }), nomatch),
      pass('ports swapped (our own direction)', segment({ srcPort: LOCAL.port, dstPort: REMOTE.port }), nomatch),
      pass('UDP on our ports', buildUdpFrame({ srcMac: REMOTE.mac, dstMac: LOCAL.mac, srcIp: REMOTE.ip, dstIp: LOCAL.ip, srcPort: REMOTE.port, dstPort: LOCAL.port, payload: Buffer.from('x') }), nomatch),
      pass('our segment with a VLAN tag (the userspace TCP takes untagged frames only)', segment({ vlans: [7] }), nomatch),
      pass('ARP for our address with a VLAN tag', buildArpFrame({ op: 'request', senderMac: REMOTE.mac, senderIp: REMOTE.ip, targetMac: '00:00:00:00:00:00', targetIp: LOCAL.ip, vlans: [7] }), nomatch),
      pass('IPv6', buildUdp6Frame({ srcMac: REMOTE.mac, dstMac: LOCAL.mac, srcIp: 'fd00::2', dstIp: 'fd00::1', srcPort: REMOTE.port, dstPort: LOCAL.port, payload: Buffer.from('x') }), nomatch),
    ],
    { stats, everyRun: () => ({ rx: 1n }) },
  )
})

t.test('truncated at every length: passed to the kernel, never steered', async (t) => {
  const obj = open()
  const stats = obj.map('stats')
  const program = obj.program('kbx_fix_steer')
  for (const [what, frame] of [['segment', segment()], ['ARP', arp(LOCAL.ip)]] as const) {
    const headerEnd = what === 'ARP' ? 14 + 28 : 14 + 20 + 20
    for (let len = 14; len < headerEnd; len++) {
      const data = frame.subarray(0, len)
      const result = program.testRun({ data, ctx: onLo })
      if (result.verdict !== 'pass' || !result.dataOut.equals(data)) t.fail(`${what} cut at ${len}: ${result.verdict}`)
    }
  }
  const c = readCounters(stats)
  t.equal(c['redirected'], 0n)
  t.equal(c['matched_tcp'], 0n, 'no truncated segment matched')
  t.equal(c['matched_arp'], 0n, 'no truncated ARP matched')
  t.equal(c['rx'], (c['malformed'] ?? 0n) + (c['passed_nomatch'] ?? 0n) + (c['passed_fragment'] ?? 0n), 'every truncated frame passed (malformed or not ours)')
})
