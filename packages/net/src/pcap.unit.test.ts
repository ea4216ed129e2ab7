import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KbxError } from '@kbx/errors'
import { LINKTYPE_ETHERNET, PcapWriter, buildUdpFrame, parsePcap, readPcap } from './index.js'

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-pcap-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const frames = [0, 1, 2, 3].map((i) =>
  buildUdpFrame({
    srcMac: '02:00:00:00:00:01',
    dstMac: '02:00:00:00:00:02',
    srcIp: '10.0.0.1',
    dstIp: '10.0.0.2',
    srcPort: 1000 + i,
    dstPort: 2000,
    payload: Buffer.alloc(i * 300 + 1, i),
  }),
)
const timestamps = [1_700_000_000_123_456_789n, 1_700_000_000_123_456_790n, 1_700_000_001_000_000_000n, 4_000_000_000_999_999_999n]

function tsharkSummary(path: string): string[] {
  return execFileSync('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'udp.srcport'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
    .trim()
    .split('\n')
}

t.test('nanosecond pcap: write → read round-trip and tshark reads it', async (t) => {
  const path = join(tempDir(t), 'ns.pcap')
  const writer = PcapWriter.open(path, { nanosecond: true })
  frames.forEach((f, i) => writer.write(f, timestamps[i]!))
  writer.close()
  writer.close()
  t.equal(writer.packetCount, 4)
  const file = readPcap(path)
  t.match(file, { linkType: LINKTYPE_ETHERNET, nanosecond: true, littleEndian: true, truncated: false, snapLength: 262144 })
  t.same(file.packets.map((p) => p.tsNs), timestamps)
  t.ok(file.packets.every((p, i) => p.data.equals(frames[i]!) && p.originalLength === frames[i]!.length))
  t.same(tsharkSummary(path), [
    `1700000000.123456789\t${frames[0]!.length}\t1000`,
    `1700000000.123456790\t${frames[1]!.length}\t1001`,
    `1700000001.000000000\t${frames[2]!.length}\t1002`,
    `4000000000.999999999\t${frames[3]!.length}\t1003`,
  ])
})

t.test('microsecond pcap keeps µs precision and tshark reads it', async (t) => {
  const path = join(tempDir(t), 'us.pcap')
  const writer = PcapWriter.open(path)
  frames.forEach((f, i) => writer.write(f, timestamps[i]!))
  writer.close()
  const file = readPcap(path)
  t.equal(file.nanosecond, false)
  t.same(file.packets.map((p) => p.tsNs), [1_700_000_000_123_456_000n, 1_700_000_000_123_456_000n, 1_700_000_001_000_000_000n, 4_000_000_000_999_999_000n])
  t.equal(readFileSync(path).readUInt32LE(0), 0xa1b2c3d4)
  t.same(tsharkSummary(path).map((l) => l.split('\t')[0]), ['1700000000.123456000', '1700000000.123456000', '1700000001.000000000', '4000000000.999999000'])
})

t.test('reads pcaps written by editcap (µs and ns)', async (t) => {
  const dir = tempDir(t)
  const ours = join(dir, 'ours.pcap')
  const writer = PcapWriter.open(ours, { nanosecond: true })
  frames.forEach((f, i) => writer.write(f, timestamps[i]!))
  writer.close()
  for (const [format, nanosecond] of [['pcap', false], ['nsecpcap', true]] as const) {
    const converted = join(dir, `${format}.pcap`)
    execFileSync('editcap', ['-F', format, ours, converted], { stdio: 'ignore' })
    const file = readPcap(converted)
    t.equal(file.nanosecond, nanosecond, format)
    t.equal(file.linkType, 1)
    t.equal(file.packets.length, 4)
    t.ok(file.packets.every((p, i) => p.data.equals(frames[i]!)), `${format} data`)
    t.equal(file.packets[0]!.tsNs, nanosecond ? timestamps[0] : 1_700_000_000_123_456_000n)
  }
  const pcapng = join(dir, 'x.pcapng')
  execFileSync('editcap', ['-F', 'pcapng', ours, pcapng], { stdio: 'ignore' })
  t.throws(() => readPcap(pcapng), { name: 'KbxError', op: 'read pcap', hint: /editcap/ })
})

t.test('reads big-endian files in both timestamp resolutions', async (t) => {
  for (const nanosecond of [false, true]) {
    const header = Buffer.alloc(24)
    header.writeUInt32BE(nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, 0)
    header.writeUInt16BE(2, 4)
    header.writeUInt16BE(4, 6)
    header.writeUInt32BE(65535, 16)
    header.writeUInt32BE(1, 20)
    const record = Buffer.alloc(16)
    record.writeUInt32BE(1_600_000_000, 0)
    record.writeUInt32BE(nanosecond ? 987_654_321 : 987_654, 4)
    record.writeUInt32BE(frames[0]!.length, 8)
    record.writeUInt32BE(frames[0]!.length + 10, 12)
    const path = join(tempDir(t), 'be.pcap')
    writeFileSync(path, Buffer.concat([header, record, frames[0]!]))
    const file = readPcap(path)
    t.match(file, { littleEndian: false, nanosecond, linkType: 1, snapLength: 65535, truncated: false })
    t.equal(file.packets[0]!.tsNs, nanosecond ? 1_600_000_000_987_654_321n : 1_600_000_000_987_654_000n)
    t.equal(file.packets[0]!.originalLength, frames[0]!.length + 10)
    t.ok(file.packets[0]!.data.equals(frames[0]!))
    t.equal(tsharkSummary(path).length, 1, 'tshark agrees it holds one packet')
  }
})

t.test('snap length cuts long packets and keeps the original length', async (t) => {
  const path = join(tempDir(t), 'snap.pcap')
  const writer = PcapWriter.open(path, { snapLength: 64 })
  writer.write(frames[3]!, 1n)
  writer.write(frames[1]!.subarray(0, 60), 2n)
  writer.close()
  const file = readPcap(path)
  t.equal(file.snapLength, 64)
  t.equal(file.packets[0]!.data.length, 64)
  t.equal(file.packets[0]!.originalLength, frames[3]!.length)
  t.ok(file.packets[0]!.data.equals(frames[3]!.subarray(0, 64)))
  t.equal(file.packets[1]!.data.length, 60)
})

t.test('many packets span several write blocks', async (t) => {
  const path = join(tempDir(t), 'many.pcap')
  const writer = PcapWriter.open(path, { nanosecond: true })
  const big = Buffer.alloc(70_000, 0x5a) // larger than the writer's block
  for (let i = 0; i < 500; i++) writer.write(frames[i % 4]!, BigInt(i))
  writer.write(big, 500n)
  writer.close()
  const file = readPcap(path)
  t.equal(file.packets.length, 501)
  t.ok(file.packets.slice(0, 500).every((p, i) => p.tsNs === BigInt(i) && p.data.equals(frames[i % 4]!)))
  t.ok(file.packets[500]!.data.equals(big))
})

t.test('truncated files, bad magic, missing files', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'cut.pcap')
  const writer = PcapWriter.open(path)
  writer.write(frames[0]!, 1n)
  writer.write(frames[1]!, 2n)
  writer.close()
  const bytes = readFileSync(path)
  for (const cut of [bytes.length - 1, 24 + 16 + frames[0]!.length + 5]) {
    const file = parsePcap(bytes.subarray(0, cut))
    t.equal(file.truncated, true)
    t.equal(file.packets.length, 1)
  }
  t.throws(() => parsePcap(bytes.subarray(0, 10)), KbxError)
  const bad = Buffer.from(bytes)
  bad.writeUInt32LE(0x12345678, 0)
  t.throws(() => parsePcap(bad), /unknown magic 0x78563412/)
  t.throws(() => readPcap(join(dir, 'missing.pcap')), { name: 'SystemError', code: 'ENOENT' })
  t.throws(() => PcapWriter.open(join(dir, 'no/such/dir.pcap')), { name: 'SystemError', code: 'ENOENT' })
  const closed = PcapWriter.open(join(dir, 'closed.pcap'))
  closed.close()
  t.throws(() => closed.write(frames[0]!, 0n), /closed/)
})

t.test('writeSlice writes the same records as write, from a slice of a larger buffer, with a snap length', async (t) => {
  const dir = tempDir(t)
  const area = Buffer.concat([Buffer.alloc(7), ...frames])
  for (const snapLength of [262144, 100]) {
    const [viaWrite, viaSlice] = ['write.pcap', 'slice.pcap'].map((name) => PcapWriter.open(join(dir, name), { nanosecond: true, snapLength }))
    let at = 7
    for (const [i, f] of frames.entries()) {
      const ts = 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000_123n
      viaWrite!.write(f, ts)
      viaSlice!.writeSlice(area, at, at + f.length, Number(ts / 1_000_000_000n), Number(ts % 1_000_000_000n))
      at += f.length
    }
    viaWrite!.close()
    viaSlice!.close()
    t.same(readFileSync(join(dir, 'slice.pcap')), readFileSync(join(dir, 'write.pcap')), `snap length ${snapLength}: byte for byte`)
  }
})
