import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { thrown } from '@kbx/errors/testing'
import { UsageError } from '@kbx/errors'
import { PcapWriter, buildPcapng, buildUdpFrame, parseCapture, parsePcapng, pcapngBlock, readCapture } from './index.js'

const frame = (i: number) =>
  buildUdpFrame({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 1000 + i, dstPort: 2000, payload: Buffer.alloc(i + 1, i) })

t.test('both byte orders, nanosecond and power-of-two resolutions, an offset, every packet block kind', async (t) => {
  for (const littleEndian of [true, false]) {
    const file = buildPcapng({
      littleEndian,
      interfaces: [{ linkType: 1, tsresol: 9 }, { linkType: 113, tsresol: 0x80 | 10, tsoffset: 100n }, { linkType: 1 }],
      packets: [
        { interfaceId: 0, units: 1_700_000_000_123_456_789n, data: frame(0) },
        { interfaceId: 1, units: 1024n * 5n + 512n, data: frame(1) },
        { interfaceId: 2, units: 1_700_000_000_000_001n, data: frame(2), originalLength: 500, kind: 'obsolete' },
        { interfaceId: 0, units: 0n, data: frame(3), kind: 'simple' },
      ],
    })
    const c = parsePcapng(file)
    t.equal(c.truncated, false)
    t.same(
      c.packets.map((p) => [p.tsNs, p.linkType, p.interfaceId, p.originalLength]),
      [
        [1_700_000_000_123_456_789n, 1, 0, frame(0).length],
        [105_500_000_000n, 113, 1, frame(1).length],
        [1_700_000_000_000_001_000n, 1, 2, 500],
        [1_700_000_000_000_001_000n, 1, 0, frame(3).length],
      ],
      `${littleEndian ? 'little' : 'big'}-endian: times, link types, interfaces, lengths`,
    )
    t.same(c.packets.map((p) => p.data), [0, 1, 2, 3].map(frame), 'the packets')
  }
})

t.test('unknown blocks are skipped; a second section starts its interfaces again', async (t) => {
  const first = buildPcapng({ interfaces: [{ linkType: 1 }], packets: [{ interfaceId: 0, units: 1n, data: frame(0) }] })
  const second = buildPcapng({ littleEndian: false, interfaces: [{ linkType: 101 }], packets: [{ interfaceId: 0, units: 2n, data: frame(1) }] })
  const c = parseCapture(Buffer.concat([first, pcapngBlock(0x0bad, Buffer.from('statistics')), second]))
  t.equal(c.format, 'pcapng')
  t.same(c.packets.map((p) => [p.tsNs, p.linkType]), [[1000n, 1], [2000n, 101]])
})

t.test('a file cut anywhere reads as the whole blocks before the cut, marked truncated', async (t) => {
  const file = buildPcapng({ interfaces: [{ linkType: 1 }], packets: [0, 1, 2].map((i) => ({ interfaceId: 0, units: BigInt(i), data: frame(i) })) })
  let cuts = 0
  for (let n = 4; n < file.length; n++) {
    const c = parsePcapng(file.subarray(0, n))
    const whole = c.packets.length
    if (!c.truncated) continue
    cuts++
    t.ok(whole <= 3 && c.packets.every((p, i) => p.data.equals(frame(i))), `cut at ${n}: ${whole} whole packets`)
  }
  t.ok(cuts > 100, 'every cut inside a block is truncated')
})

function patched(bytes: Buffer, at: number, value: number): Buffer {
  const copy = Buffer.from(bytes)
  copy[at] = value
  return copy
}


t.test('malformed blocks are usage errors naming the block', async (t) => {
  const good = buildPcapng({ interfaces: [{ linkType: 1 }], packets: [{ interfaceId: 0, units: 1n, data: frame(0) }] })
  const cases: [string, Buffer, RegExp][] = [
    ['no section header first', pcapngBlock(1, Buffer.alloc(8)), /does not start with a section header/],
    ['unknown byte order', Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0]), Buffer.alloc(20, 0x77)]), /byte-order magic/],
    ['packet of an undescribed interface', buildPcapng({ interfaces: [], packets: [{ interfaceId: 0, units: 1n, data: frame(0) }] }), /packet of interface 0, but the section describes 0/],
    // The section header is 28 bytes, the interface description 20: the packet block starts at 48.
    ['length not a multiple of 4', patched(good, 28 + 4, 21), /block length 21/],
    ['trailing length differs', patched(good, good.length - 4, good[good.length - 4]! + 4), /trailing block length/],
    ['captured length past the block', patched(good, 48 + 8 + 12, 0xff), /captured length 255 runs past/],
  ]
  for (const [what, bytes, message] of cases) {
    const error = thrown(() => parsePcapng(bytes, 'x.pcapng'))
    t.ok(error instanceof UsageError && error.exitCode === 2, `${what}: a usage error`)
    t.match((error as Error).message, message, what)
  }
  t.throws(() => parseCapture(Buffer.from('not a capture at all, just text')), /neither pcap nor pcapng/, 'neither format')
})

t.test('tshark tools read what we read: editcap turns a classic pcap into pcapng, readCapture reads both the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-pcapng-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pcap = join(dir, 'a.pcap')
  const w = PcapWriter.open(pcap, { nanosecond: true })
  for (let i = 0; i < 5; i++) w.write(frame(i), 1_700_000_000_123_456_789n + BigInt(i) * 1001n)
  w.close()
  execFileSync('editcap', ['-F', 'pcapng', pcap, join(dir, 'a.pcapng')])
  const classic = readCapture(pcap)
  const ng = readCapture(join(dir, 'a.pcapng'))
  t.equal(classic.format, 'pcap')
  t.equal(ng.format, 'pcapng')
  t.same(ng.packets.map((p) => [p.tsNs, p.data]), classic.packets.map((p) => [p.tsNs, p.data]))
})
