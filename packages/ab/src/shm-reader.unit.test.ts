// The shm ring (native/include/kbx_ab_shm.h) through the receive loop's own delivery path: frames ingested
// by kbx_ab_rx_ingest go to a small ring, read by ShmReader. Wrap-around, overrun counted, never torn data.
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { repoRoot } from '@kbx/ffi'
import { buildUdpFrame } from '@kbx/net'
import { OPTIQ_SIZE, encodeMold, encodeOptiq } from './format.js'
import { NativeOutputs, parseOutput } from './outputs.js'
import { ShmReader } from './shm-reader.js'
import { ReceiveTracker } from './tracker.js'
import { FORMAT_CODE } from './format.js'

const hosts = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.1.1', dstIp: '10.0.1.2', srcPort: 1, dstPort: 8080 }
const payload = (sequence: number | bigint, session = 7) => encodeOptiq({ sessionId: session, sequence: Number(sequence), orderId: BigInt(sequence) })
const optiq = (sequence: number, session = 7) => buildUdpFrame({ ...hosts, payload: payload(sequence, session) })

function ring(t: Test, slots: number) {
  const name = `kbx-test-ring-${process.pid}-${slots}-${Math.random().toString(36).slice(2, 8)}`
  const rx = new ReceiveTracker({ format: 'optiq', window: 64 })
  const outputs = NativeOutputs.open([parseOutput(`shm:${name},slots=${slots},slot-size=128`)], { format: FORMAT_CODE.optiq })
  rx.attachOutputs(outputs)
  t.teardown(() => {
    rx.close()
    outputs.close()
  })
  return { name, rx, outputs }
}

t.test('wrap-around: a reader that keeps up reads every message in order across many turns of the ring', async (t) => {
  const { name, rx, outputs } = ring(t, 8)
  const reader = new ShmReader(name)
  t.teardown(() => reader.close())
  const seen: bigint[] = []
  for (let n = 1; n <= 100; n++) {
    rx.ingest(optiq(n), n % 3 ? 'A' : 'B')
    if (n % 5 === 0) for (const m of reader.read()) seen.push(m.sequence)
  }
  t.same(seen, Array.from({ length: 100 }, (_, i) => BigInt(i + 1)), '100 messages through 8 slots, in order')
  t.equal(reader.status().lost, 0n, 'nothing lost')
  t.equal(reader.status().head, 100n)
  t.same(outputs.counters()[0], { out: `shm:${name}`, messages: 100n, bytes: 100n * BigInt(OPTIQ_SIZE), errors: 0n, head: 100n }, 'output counters: messages, bytes, head')
})

t.test('message fields: stream, sequence, winning line, arrival time, the payload as received', async (t) => {
  const { name, rx } = ring(t, 8)
  const reader = new ShmReader(name)
  t.teardown(() => reader.close())
  const before = BigInt(Date.now()) * 1_000_000n
  rx.ingest(optiq(41, 1234), 'B')
  const [m] = reader.read()
  t.ok(m)
  t.equal(m!.stream, '1234')
  t.equal(m!.sequence, 41n)
  t.equal(m!.line, 'B')
  t.equal(m!.index, 0n)
  t.ok(m!.arrivalNs >= before - 1_000_000_000n && m!.arrivalNs <= before + 5_000_000_000n, 'arrival time is CLOCK_REALTIME now')
  t.same([...m!.payload], [...payload(41, 1234)], 'the UDP payload')
})

t.test('overrun: a reader lapped by the producer is told how many it lost, then reads consistent data', async (t) => {
  const { name, rx } = ring(t, 8)
  const slow = new ShmReader(name)
  t.teardown(() => slow.close())
  for (let n = 1; n <= 3; n++) rx.ingest(optiq(n))
  t.same(slow.read(2).map((m) => m.sequence), [1n, 2n], 'reads the first two')
  for (let n = 4; n <= 30; n++) rx.ingest(optiq(n))
  // Message 3 (index 2) onward: head 30, the ring holds indexes 22..29 (numbers 23..30).
  const rest = slow.read()
  t.equal(slow.status().lost, 20n, 'numbers 3..22 lost: counted')
  t.same(rest.map((m) => m.sequence), Array.from({ length: 8 }, (_, i) => BigInt(23 + i)), 'then the 8 the ring still holds, in order')
  t.same(rest.map((m) => m.index), Array.from({ length: 8 }, (_, i) => BigInt(22 + i)), 'their ring indexes')
  for (const m of rest) t.same([...m.payload], [...payload(m.sequence)], `payload of ${m.sequence} intact`)
  rx.ingest(optiq(31))
  t.same(slow.read().map((m) => m.sequence), [31n], 'and keeps up afterwards')
  t.equal(slow.status().lost, 20n)
})

t.test('a new reader starts at the head; the ring is ended and removed when the outputs close', async (t) => {
  const { name, rx, outputs } = ring(t, 8)
  for (let n = 1; n <= 5; n++) rx.ingest(optiq(n))
  const late = new ShmReader(name)
  t.teardown(() => late.close())
  t.same(late.read(), [], 'nothing old')
  rx.ingest(optiq(6))
  t.same(late.read().map((m) => m.sequence), [6n])
  t.equal(late.status().ended, false)
  outputs.close()
  t.equal(existsSync(`/dev/shm/${name}`), false, 'the file is removed')
  t.equal(late.status().ended, true, 'a reader still mapping it sees the end')
})

t.test('a payload larger than a slot is counted as an error, not written', async (t) => {
  const { name, rx, outputs } = ring(t, 8)
  const reader = new ShmReader(name)
  t.teardown(() => reader.close())
  const big = buildUdpFrame({ ...hosts, payload: Buffer.concat([payload(1), Buffer.alloc(100)]) })
  rx.ingest(big)
  rx.ingest(optiq(2))
  t.same(reader.read().map((m) => m.sequence), [2n])
  t.equal(outputs.counters()[0]!.errors, 1n)
})

t.test('moldudp64: the stream is the session, the sequence the packet\'s first number, the format in the ring', async (t) => {
  const name = `kbx-test-ring-${process.pid}-mold`
  const rx = new ReceiveTracker({ format: 'moldudp64', window: 64 })
  const outputs = NativeOutputs.open([parseOutput(`shm:${name},slots=4`)], { format: FORMAT_CODE.moldudp64 })
  rx.attachOutputs(outputs)
  const reader = new ShmReader(name)
  t.teardown(() => {
    reader.close()
    rx.close()
    outputs.close()
  })
  const packet = (sequence: bigint) => encodeMold({ session: 'SESSION001', sequence, messages: [Buffer.from('ab'), Buffer.from('cde')] })
  rx.ingest(buildUdpFrame({ ...hosts, payload: packet(1n << 40n) }), 'B')
  rx.ingest(buildUdpFrame({ ...hosts, payload: packet((1n << 40n) + 2n) }))
  const read = reader.read()
  t.same(read.map((m) => [m.stream, m.sequence, m.line]), [['SESSION001', 1n << 40n, 'B'], ['SESSION001', (1n << 40n) + 2n, 'A']])
  t.same([...read[0]!.payload], [...packet(1n << 40n)], 'the whole packet, both messages')
  t.equal(reader.status().format, 'moldudp64')
})

t.test('under real concurrency (native/test/ab_shm_stress.c): a producer lapping its reader mid-copy never yields a torn message', async (t) => {
  // Without the stamp's second check the same run reports hundreds of torn copies.
  for (const slots of ['4', '2']) {
    const report = JSON.parse(execFileSync(join(repoRoot, 'native/build/ab_shm_stress'), ['500000', slots], { encoding: 'utf8' })) as Record<string, number>
    t.equal(report['torn'], 0, `${slots} slots: no torn copy among ${report['received']} read`)
    t.equal(report['outOfOrder'], 0, `${slots} slots: in order`)
    t.equal(report['received']! + report['lost']!, 500000, `${slots} slots: read + lost = written`)
    t.ok(report['lost']! > 0 && report['received']! > 0, `${slots} slots: overrun ${report['lost']} times, read ${report['received']}`)
  }
})

t.test('ShmReader on something that is not a ring: a typed error', async (t) => {
  t.throws(() => new ShmReader('kbx-no-such-ring'), { name: 'XskError', errno: 2 }, 'no such ring: ENOENT')
  t.throws(() => new ShmReader('../etc'), { name: 'XskError', errno: 22 }, 'a path: EINVAL')
  const junk = `kbx-test-junk-${process.pid}`
  writeFileSync(`/dev/shm/${junk}`, Buffer.alloc(4096, 1))
  t.teardown(() => rmSync(`/dev/shm/${junk}`, { force: true }))
  t.throws(() => new ShmReader(junk), { name: 'XskError', errno: 71 }, 'a file that is not a ring: EPROTO')
})
