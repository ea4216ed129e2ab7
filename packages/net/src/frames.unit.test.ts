import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { UsageError } from '@kbx/errors'
import {
  EtherType,
  PcapWriter,
  TcpFlags,
  buildArpFrame,
  buildTcpFrame,
  buildUdp6Frame,
  buildUdpFrame,
  parseFrame,
  udpFrameLength,
  udpFrameTemplate,
  writeUdpFrame,
} from './index.js'
import type { ParsedFrameOk, UdpSpec } from './index.js'

const macs = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02' }
const flow = { ...macs, srcIp: '10.0.0.1', dstIp: '10.0.0.2' }

function parsedOk(t: Test, frame: Uint8Array): ParsedFrameOk {
  const parsed = parseFrame(frame)
  if (!parsed.ok) {
    t.fail(`parseFrame failed: ${parsed.error}`)
    throw new Error(parsed.error)
  }
  return parsed
}

// Frames covering every builder feature; the tshark test and the truncation test use them all.
const sampleFrames: { name: string; frame: Buffer }[] = [
  { name: 'udp', frame: buildUdpFrame({ ...flow, srcPort: 40000, dstPort: 9000, payload: Buffer.from('hello world') }) },
  {
    name: 'udp odd payload, vlans, ip options',
    frame: buildUdpFrame({
      ...flow,
      vlans: [100, 200],
      options: Buffer.from([0x94, 0x04, 0x00, 0x00, 0x01]), // router alert + NOP, padded to 8
      ttl: 3,
      tos: 0xb8,
      id: 0xbeef,
      dontFragment: true,
      srcPort: 1,
      dstPort: 65535,
      payload: Buffer.from('odd'),
    }),
  },
  { name: 'udp empty payload', frame: buildUdpFrame({ ...flow, srcPort: 5, dstPort: 6, payload: new Uint8Array(0) }) },
  {
    name: 'udp large payload',
    frame: buildUdpFrame({ ...flow, srcPort: 5, dstPort: 6, payload: Buffer.alloc(1472, 0xa5) }),
  },
  {
    name: 'tcp syn with options',
    frame: buildTcpFrame({
      ...flow,
      srcPort: 33000,
      dstPort: 443,
      seq: 0xfffffff0,
      ack: 0,
      flags: TcpFlags.SYN,
      window: 64240,
      // MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (a Linux SYN)
      options: Buffer.from('020405b40402080a0001e2400000000001030307', 'hex'),
    }),
  },
  {
    name: 'tcp psh/ack with payload and ip options',
    frame: buildTcpFrame({
      ...flow,
      vlans: [7],
      ipOptions: Buffer.from([1, 1, 1, 0]),
      srcPort: 9876,
      dstPort: 5001,
      seq: 123456789,
      ack: 987654321,
      flags: TcpFlags.PSH | TcpFlags.ACK,
      window: 501,
      payload: Buffer.from('8=FIX.4.4\x019=5\x0135=0\x0110=000\x01'),
    }),
  },
  {
    name: 'udp over ipv6',
    frame: buildUdp6Frame({ ...macs, srcIp: 'fd00::1', dstIp: 'fd00:0:0:1::2', srcPort: 443, dstPort: 50000, payload: Buffer.from('quic?') }),
  },
  {
    name: 'arp request',
    frame: buildArpFrame({ op: 'request', senderMac: macs.srcMac, senderIp: '10.0.0.1', targetMac: '00:00:00:00:00:00', targetIp: '10.0.0.2' }),
  },
  {
    name: 'arp reply',
    frame: buildArpFrame({ op: 'reply', senderMac: macs.dstMac, senderIp: '10.0.0.2', targetMac: macs.srcMac, targetIp: '10.0.0.1' }),
  },
]

t.test('builds the classic 192.168.0.1 → 192.168.0.199 IPv4 header byte for byte', async (t) => {
  const frame = buildUdpFrame({
    ...macs,
    srcIp: '192.168.0.1',
    dstIp: '192.168.0.199',
    dontFragment: true,
    srcPort: 1,
    dstPort: 2,
    payload: Buffer.alloc(0x73 - 28),
  })
  t.equal(frame.subarray(0, 14).toString('hex'), '020000000002020000000001' + '0800')
  t.equal(frame.subarray(14, 34).toString('hex'), '45000073000040004011b861c0a80001c0a800c7')
})

t.test('UDP: header fields and payload round-trip through parseFrame', async (t) => {
  const payload = Buffer.from('hello world')
  const p = parsedOk(t, sampleFrames[0]!.frame)
  t.same(p.eth, { dstMac: macs.dstMac, srcMac: macs.srcMac, etherType: EtherType.IPv4 })
  t.same(p.vlans, [])
  t.match(p.ipv4, { headerLength: 20, totalLength: 20 + 8 + 11, ttl: 64, protocol: 17, src: '10.0.0.1', dst: '10.0.0.2', checksumValid: true })
  t.match(p.udp, { srcPort: 40000, dstPort: 9000, length: 19, checksumValid: true })
  t.equal(Buffer.from(sampleFrames[0]!.frame.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)).toString(), payload.toString())
})

t.test('VLAN tags and IPv4 options round-trip', async (t) => {
  const p = parsedOk(t, sampleFrames[1]!.frame)
  t.same(p.vlans.map((v) => [v.tpid, v.vid]), [[0x8100, 100], [0x8100, 200]])
  t.equal(p.l3Offset, 22)
  t.match(p.ipv4, { headerLength: 28, ttl: 3, tos: 0xb8, id: 0xbeef, dontFragment: true, moreFragments: false, checksumValid: true })
  t.equal(p.ipv4!.options.toString('hex'), '9404000001000000')
  t.match(p.udp, { srcPort: 1, dstPort: 65535, length: 11, checksumValid: true })
  t.equal(p.payloadLength, 3)

  const qinq = parsedOk(t, buildUdpFrame({ ...flow, vlans: [1, 4095], outerVlanTpid: EtherType.QinQ, srcPort: 1, dstPort: 2, payload: Buffer.from('x') }))
  t.same(qinq.vlans.map((v) => [v.tpid, v.vid]), [[0x88a8, 1], [0x8100, 4095]])
  t.match(qinq.udp, { checksumValid: true })
  t.throws(() => buildUdpFrame({ ...flow, vlans: [4096], srcPort: 1, dstPort: 2, payload: Buffer.from('x') }), UsageError)
  t.throws(() => buildUdpFrame({ ...flow, options: Buffer.alloc(41), srcPort: 1, dstPort: 2, payload: Buffer.from('x') }), UsageError)
})

t.test('TCP header, flags and options round-trip', async (t) => {
  const syn = parsedOk(t, sampleFrames[4]!.frame)
  t.match(syn.tcp, { srcPort: 33000, dstPort: 443, seq: 0xfffffff0, ack: 0, flags: TcpFlags.SYN, window: 64240, headerLength: 40, checksumValid: true })
  t.equal(syn.tcp!.options.toString('hex'), '020405b40402080a0001e2400000000001030307')
  t.equal(syn.payloadLength, 0)
  const data = parsedOk(t, sampleFrames[5]!.frame)
  t.same(data.vlans.map((v) => v.vid), [7])
  t.match(data.ipv4, { headerLength: 24, checksumValid: true })
  t.match(data.tcp, { seq: 123456789, ack: 987654321, flags: 0x18, window: 501, headerLength: 20, checksumValid: true })
  t.equal(Buffer.from(sampleFrames[5]!.frame.subarray(data.payloadOffset)).toString(), '8=FIX.4.4\x019=5\x0135=0\x0110=000\x01')
  t.same(TcpFlags, { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 })
})

t.test('IPv6 UDP and ARP round-trip', async (t) => {
  const v6 = parsedOk(t, sampleFrames[6]!.frame)
  t.match(v6.ipv6, { src: 'fd00::1', dst: 'fd00:0:0:1::2', protocol: 17, hopLimit: 64, payloadLength: 13 })
  t.match(v6.udp, { srcPort: 443, dstPort: 50000, checksumValid: true })
  const request = parsedOk(t, sampleFrames[7]!.frame)
  t.equal(request.eth.dstMac, 'ff:ff:ff:ff:ff:ff')
  t.match(request.arp, { op: 'request', opcode: 1, senderMac: macs.srcMac, senderIp: '10.0.0.1', targetIp: '10.0.0.2' })
  const reply = parsedOk(t, sampleFrames[8]!.frame)
  t.equal(reply.eth.dstMac, macs.srcMac)
  t.match(reply.arp, { op: 'reply', senderMac: macs.dstMac, targetMac: macs.srcMac })
})

t.test('a UDP checksum that computes to 0 is sent as 0xffff', async (t) => {
  const spec = { ...flow, srcPort: 7, dstPort: 7, payload: Buffer.alloc(2) }
  const probe = buildUdpFrame(spec)
  const checksum = probe.readUInt16BE(34 + 6)
  // Adding the complement of the sum as one more word makes the sum 0xffff, i.e. checksum 0.
  const frame = buildUdpFrame({ ...spec, payload: Buffer.from([checksum >>> 8, checksum & 0xff]) })
  t.equal(frame.readUInt16BE(34 + 6), 0xffff)
  t.match(parsedOk(t, frame).udp, { checksumValid: true })
  const unchecked = buildUdpFrame({ ...spec, udpChecksum: false })
  t.equal(unchecked.readUInt16BE(34 + 6), 0)
  t.match(parsedOk(t, unchecked).udp, { checksumValid: undefined })
})

t.test('checksum errors are detected', async (t) => {
  for (const [name, offset] of [['ip header', 14 + 8], ['udp payload', 45]] as const) {
    const frame = Buffer.from(sampleFrames[0]!.frame)
    frame[offset]! ^= 0x40
    const p = parsedOk(t, frame)
    t.equal(p.ipv4!.checksumValid && p.udp!.checksumValid, false, name)
  }
  const tcp = Buffer.from(sampleFrames[5]!.frame)
  tcp[tcp.length - 1]! ^= 1
  t.equal(parsedOk(t, tcp).tcp!.checksumValid, false)
})

t.test('writeUdpFrame writes in place, exactly the bytes of buildUdpFrame', async (t) => {
  const spec: UdpSpec = { ...flow, vlans: [42], srcPort: 1000, dstPort: 2000, id: 9, payload: Buffer.from('in place') }
  const expected = buildUdpFrame(spec)
  const umem = Buffer.alloc(4096, 0xee)
  const length = writeUdpFrame(umem, 2048 + 256, spec)
  t.equal(length, expected.length)
  t.equal(udpFrameLength(spec), expected.length)
  t.ok(umem.subarray(2048 + 256, 2048 + 256 + length).equals(expected))
  t.ok(umem.subarray(0, 2048 + 256).every((b) => b === 0xee), 'bytes before untouched')
  t.ok(umem.subarray(2048 + 256 + length).every((b) => b === 0xee), 'bytes after untouched')
  t.throws(() => writeUdpFrame(Buffer.alloc(50), 0, spec), UsageError)
  t.throws(() => writeUdpFrame(umem, 4096 - 10, spec), UsageError)
  t.throws(() => writeUdpFrame(umem, 0, { ...spec, dstPort: 65536 }), UsageError)
  t.throws(() => writeUdpFrame(umem, 0, { ...spec, srcIp: '10.0.0' }), UsageError)
})

t.test('UdpFrameTemplate produces the same frames as buildUdpFrame', async (t) => {
  const base = { ...flow, vlans: [3], options: Buffer.from([1, 1, 1, 1]), ttl: 9, tos: 4, dontFragment: true, srcPort: 31000, dstPort: 31001 }
  const template = udpFrameTemplate(base)
  const umem = Buffer.alloc(2048 * 4)
  for (const [i, size] of [0, 1, 2, 17, 100, 1400].entries()) {
    const payload = Buffer.alloc(size).map((_, j) => (j * 7 + size) & 0xff)
    const id = i * 9000
    const n = template.write(umem, 2048 * (i % 4), payload, id)
    t.ok(umem.subarray(2048 * (i % 4), 2048 * (i % 4) + n).equals(buildUdpFrame({ ...base, id, payload })), `payload ${size}`)
  }
  // Payload patched in place, then headers.
  const payload = Buffer.from('seq=00000042')
  umem.fill(0)
  payload.copy(umem, 100 + template.payloadOffset)
  const n = template.writeHeaders(umem, 100, payload.length)
  t.ok(umem.subarray(100, 100 + n).equals(buildUdpFrame({ ...base, payload })))
  t.throws(() => udpFrameTemplate({ ...base, fragmentOffset: 8 }), UsageError)
})

t.test('fragments: first fragments carry L4 unverified, later ones carry none', async (t) => {
  const first = parsedOk(t, buildUdpFrame({ ...flow, id: 77, moreFragments: true, srcPort: 1, dstPort: 2, payload: Buffer.alloc(64) }))
  t.match(first.ipv4, { moreFragments: true, fragmentOffset: 0, id: 77 })
  t.match(first.udp, { srcPort: 1, dstPort: 2, checksumValid: undefined })
  const frame = buildUdpFrame({ ...flow, id: 77, fragmentOffset: 72, srcPort: 1, dstPort: 2, payload: Buffer.from('tail of the datagram') })
  t.equal(frame.length, 14 + 20 + 20, 'no UDP header in a non-first fragment')
  const later = parsedOk(t, frame)
  t.match(later.ipv4, { fragmentOffset: 72, moreFragments: false, checksumValid: true })
  t.equal(later.udp, undefined)
  t.equal(later.tcp, undefined)
  t.equal(later.payloadOffset, 34)
  t.equal(Buffer.from(frame.subarray(later.payloadOffset, later.payloadOffset + later.payloadLength)).toString(), 'tail of the datagram')
  t.throws(() => buildUdpFrame({ ...flow, fragmentOffset: 12, srcPort: 1, dstPort: 2, payload: Buffer.alloc(1) }), UsageError)
})

t.test('malformed frames are reported, not thrown', async (t) => {
  const udp = sampleFrames[0]!.frame
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(udp)
    f(b)
    return b
  }
  t.same(parseFrame(new Uint8Array(0)), { ok: false, error: 'truncated ethernet header' })
  t.same(parseFrame(udp.subarray(0, 20)), { ok: false, error: 'truncated ipv4 header' })
  t.same(parseFrame(mutate((b) => (b[14] = 0x44))), { ok: false, error: 'bad ipv4 header length 16' })
  t.same(parseFrame(mutate((b) => (b[14] = 0x4f))), { ok: false, error: 'truncated ipv4 header' })
  t.same(parseFrame(mutate((b) => (b[14] = 0x55))), { ok: false, error: 'bad ipv4 version 5' })
  t.same(parseFrame(mutate((b) => b.writeUInt16BE(19, 16))), { ok: false, error: 'bad ipv4 total length 19' })
  t.same(parseFrame(mutate((b) => b.writeUInt16BE(1000, 16))), { ok: false, error: 'truncated ipv4 packet' })
  t.same(parseFrame(mutate((b) => b.writeUInt16BE(7, 34 + 4))), { ok: false, error: 'bad udp length 7' })
  t.same(parseFrame(mutate((b) => b.writeUInt16BE(100, 34 + 4))), { ok: false, error: 'truncated udp datagram' })
  t.same(parseFrame(mutate((b) => b.writeUInt16BE(24, 16))), { ok: false, error: 'truncated udp header' })
  const tcp = Buffer.from(sampleFrames[4]!.frame)
  tcp[34 + 12] = 0x40
  t.same(parseFrame(tcp), { ok: false, error: 'bad tcp header length 16' })
  t.same(parseFrame(Buffer.from('ffffffffffff0200000000018100', 'hex')), { ok: false, error: 'truncated vlan tag' })
})

t.test('unknown EtherTypes and protocols parse ok without the unknown layer', async (t) => {
  const frame = Buffer.concat([Buffer.from('0200000000020200000000010088b5', 'hex').subarray(0, 14), Buffer.from('abcdef', 'hex')])
  frame.writeUInt16BE(0x88b5, 12)
  const p = parsedOk(t, frame)
  t.equal(p.eth.etherType, 0x88b5)
  t.equal(p.ipv4, undefined)
  t.equal(p.payloadOffset, 14)
  t.equal(p.payloadLength, 3)
  const icmp = Buffer.from(sampleFrames[0]!.frame)
  icmp[14 + 9] = 1
  icmp.writeUInt16BE(0, 14 + 10)
  const q = parsedOk(t, icmp)
  t.equal(q.ipv4!.protocol, 1)
  t.equal(q.udp, undefined)
  t.equal(q.payloadOffset, 34)
  t.equal(q.payloadLength, 19)
})

t.test('Ethernet padding after the IP packet is excluded from the payload', async (t) => {
  const frame = Buffer.concat([buildUdpFrame({ ...flow, srcPort: 1, dstPort: 2, payload: Buffer.from('x') }), Buffer.alloc(17)])
  t.equal(frame.length, 60)
  const p = parsedOk(t, frame)
  t.equal(p.payloadLength, 1)
  t.equal(p.udp!.checksumValid, true)
})

t.test('truncation at every length and random corruption never throw', async (t) => {
  let failures = 0
  for (const { name, frame } of sampleFrames) {
    for (let n = 0; n < frame.length; n++) {
      const parsed = parseFrame(frame.subarray(0, n))
      if (parsed.ok || parsed.error.startsWith('unparseable')) {
        failures++
        t.fail(`${name} cut to ${n} bytes: ${JSON.stringify(parsed).slice(0, 200)}`)
      }
    }
    t.ok(parseFrame(frame).ok, `${name} parses whole`)
  }
  t.equal(failures, 0, 'every truncated frame is reported as malformed')
  // Deterministic pseudo-random corruption (xorshift) of every sample.
  let seed = 0x9e3779b9
  const random = (): number => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 0x100000000
  }
  let internalErrors = 0
  for (let i = 0; i < 20000; i++) {
    const sample = sampleFrames[i % sampleFrames.length]!.frame
    const b = Buffer.from(sample.subarray(0, Math.floor(random() * (sample.length + 1))))
    for (let k = 0; k < 3; k++) if (b.length > 0) b[Math.floor(random() * b.length)] = Math.floor(random() * 256)
    const parsed = parseFrame(b)
    if (!parsed.ok && parsed.error.startsWith('unparseable')) internalErrors++
  }
  t.equal(internalErrors, 0, 'corrupted frames never hit an internal exception')
})

t.test('tshark decodes every built frame and finds every checksum good', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-net-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'frames.pcap')
  const writer = PcapWriter.open(path, { nanosecond: true })
  sampleFrames.forEach(({ frame }, i) => writer.write(frame, 1_700_000_000_000_000_000n + BigInt(i)))
  writer.close()
  const out = execFileSync(
    'tshark',
    [
      '-r', path,
      '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
      '-T', 'fields', '-E', 'separator=|',
      '-e', 'frame.protocols', '-e', 'vlan.id', '-e', 'ip.checksum.status', '-e', 'udp.checksum.status',
      '-e', 'tcp.checksum.status', '-e', 'tcp.options.mss_val', '-e', 'arp.opcode', '-e', 'ipv6.dst', '-e', '_ws.expert.severity',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  )
  const rows = out.trim().split('\n').map((line) => line.split('|'))
  t.equal(rows.length, sampleFrames.length)
  const GOOD = '1' // tshark checksum status: 0 bad, 1 good, 2 unverified
  const row = (i: number): string[] => rows[i] ?? []
  t.match(row(0), ['eth:ethertype:ip:udp:data', '', GOOD, GOOD])
  t.match(row(1), ['eth:ethertype:vlan:ethertype:vlan:ethertype:ip:udp:data', '100,200', GOOD, GOOD])
  t.match(row(2), ['eth:ethertype:ip:udp', '', GOOD, GOOD])
  t.match(row(3), ['eth:ethertype:ip:udp:data', '', GOOD, GOOD])
  t.match(row(4), ['eth:ethertype:ip:tcp', '', GOOD, '', GOOD, '1460'])
  t.match(row(5), [/^eth:ethertype:vlan:ethertype:ip:tcp/, '7', GOOD, '', GOOD])
  t.match(row(6), ['eth:ethertype:ipv6:udp:data', '', '', GOOD, '', '', '', 'fd00:0:0:1::2'])
  t.match(row(7), ['eth:ethertype:arp', '', '', '', '', '', '1'])
  t.match(row(8), ['eth:ethertype:arp', '', '', '', '', '', '2'])
  for (const [i, r] of rows.entries()) t.notMatch(r[8] ?? '', /error|warn/i, `frame ${i} has no tshark expert errors/warnings`)
})
