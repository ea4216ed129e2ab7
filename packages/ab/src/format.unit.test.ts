// The feed formats of format.ts against bytes written out by hand from the specifications (optiq as
// bpf/include/ab_format.h lays it out, Nasdaq's MoldUDP64 downstream packet), and the C parser's reading of
// what format.ts builds (through the receive loop's kbx_ab_rx_ingest).
import t from 'tap'
import { UsageError } from '@kbx/errors'
import { buildUdpFrame } from '@kbx/net'
import {
  MOLD_HEADER_SIZE,
  OPTIQ_SIZE,
  decodePayload,
  encodeEndOfSession,
  encodeFeedPayload,
  FeedPayloadWriter,
  encodeMold,
  encodeOptiq,
  parseFormat,
  sequenceBits,
  streamName,
} from './format.js'
import { ReceiveTracker } from './tracker.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const hosts = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.1.1', dstIp: '10.0.1.2', srcPort: 1, dstPort: 8080 }

t.test('optiq: 36 little-endian bytes, field by field', async (t) => {
  t.equal(OPTIQ_SIZE, 36)
  const bytes = encodeOptiq({
    version: 1,
    serviceId: 0x0203,
    sessionId: 1000,
    sequence: 0xfffffffe,
    timestamp: 0x1122334455667788n,
    messageType: 7,
    quantity: 300,
    price: 0x01020304,
    orderId: 42n,
  })
  t.same(
    bytes,
    hex(`01 24 0302 e8030000 feffffff 8877665544332211 0700 2c01 04030201 2a00000000000000`),
  )
  t.same(decodePayload('optiq', bytes), { kind: 'data', stream: '1000', sequence: 0xfffffffen, count: 1 })
  t.same(decodePayload('optiq', bytes.subarray(0, 35)), { kind: 'short' }, 'one byte short')
  const at = Buffer.alloc(40, 0xaa)
  encodeOptiq({ sessionId: 5, sequence: 6 }, at, 4)
  t.same(at.subarray(0, 4), hex('aaaaaaaa'), 'writes at the offset only')
  t.same(decodePayload('optiq', at.subarray(4)), { kind: 'data', stream: '5', sequence: 6n, count: 1 })
})

t.test('moldudp64: session, big-endian sequence and count, length-prefixed messages', async (t) => {
  t.equal(MOLD_HEADER_SIZE, 20)
  const packet = encodeMold({ session: 'ABC', sequence: 0x0102030405060708n, messages: [Uint8Array.of(1, 2, 3), new Uint8Array(0)] })
  t.same(packet, hex(`41424320202020202020 0102030405060708 0002 0003 010203 0000`))
  t.same(decodePayload('moldudp64', packet), { kind: 'data', stream: 'ABC', sequence: 0x0102030405060708n, count: 2 })

  const heartbeat = encodeMold({ session: 'ABC', sequence: 9n, messages: [] })
  t.same(heartbeat, hex(`41424320202020202020 0000000000000009 0000`))
  t.same(decodePayload('moldudp64', heartbeat), { kind: 'heartbeat', stream: 'ABC', sequence: 9n })

  const end = encodeMold({ session: 'S000000001', sequence: 2n ** 64n - 1n, messages: [], endOfSession: true })
  t.same(end, hex(`53303030303030303031 ffffffffffffffff ffff`))
  t.same(decodePayload('moldudp64', end), { kind: 'end', stream: 'S000000001', sequence: 2n ** 64n - 1n })
  t.same(encodeEndOfSession(1, 0, 2n ** 64n - 1n), end, 'encodeEndOfSession: the same packet')

  t.same(encodeMold({ session: 'ELEVENCHARS', sequence: 2n ** 64n, messages: [] }).subarray(0, 18), hex(`454c4556454e43484152 0000000000000000`), 'session cut to 10, sequence wrapped to 64 bits')
  t.same(decodePayload('moldudp64', packet.subarray(0, 19)), { kind: 'short' }, 'one byte short of the header')
})

t.test('feed payloads: stream names, widths and sizes', async (t) => {
  t.equal(sequenceBits('optiq'), 32)
  t.equal(sequenceBits('moldudp64'), 64)
  t.same(decodePayload('optiq', encodeFeedPayload('optiq', 3, 2n ** 32n + 5n)), { kind: 'data', stream: '1003', sequence: 5n, count: 1 }, 'optiq wraps at 2^32')
  t.equal(encodeFeedPayload('optiq', 0, 1n, 100).length, 100, 'padded to the size asked')
  const mold = encodeFeedPayload('moldudp64', 2, 2n ** 64n + 7n, 64)
  t.equal(mold.length, 64)
  t.same(decodePayload('moldudp64', mold), { kind: 'data', stream: 'S000000002', sequence: 7n, count: 1 })
  t.equal(streamName('moldudp64', 2, 36 ** 2 + 1), 'R010100002', 'a later session: R + base-36 session + index')
  t.equal(parseFormat('moldudp64'), 'moldudp64')
  t.throws(() => parseFormat('itch'), UsageError)
})

t.test('the C parser (ab_format.h through kbx_ab_rx_ingest) reads what format.ts builds', async (t) => {
  for (const format of ['optiq', 'moldudp64'] as const) {
    const tracker = new ReceiveTracker({ format })
    t.teardown(() => tracker.close())
    const frame = (sequence: bigint) => buildUdpFrame({ ...hosts, payload: encodeFeedPayload(format, 4, sequence) })
    // 10, 11, then 14: the hole 12..13 is reported under the stream name format.ts computes.
    for (const n of [10n, 11n, 14n]) t.ok(tracker.ingest(frame(n)), `${format} ${n}: feed data`)
    const { gaps } = tracker.flush()
    t.same(gaps, [{ stream: streamName(format, 4), from: 12n, to: 13n, count: 2 }], `${format}: stream and numbers as C parsed them`)
    t.equal(tracker.counters().not_feed, 0n)
  }
})

t.test('FeedPayloadWriter writes what encodeFeedPayload does, reusing one buffer per stream', async (t) => {
  for (const format of ['optiq', 'moldudp64'] as const) {
    for (const size of [0, 64, 200]) {
      const w = new FeedPayloadWriter(format, size)
      const cases: [number, bigint, number][] = [[0, 1n, 0], [3, 0xffff_ffffn, 0], [3, 0x1_0000_0001n, 0], [0, 2n ** 64n - 1n, 1], [0, 7n, 2], [3, 5n, 0]]
      for (const [index, sequence, session] of cases) {
        t.same(w.payload(index, sequence, session), encodeFeedPayload(format, index, sequence, size, session), `${format} size ${size} stream ${index} seq ${sequence} session ${session}`)
      }
      t.equal(w.payload(1, 1n), w.payload(1, 2n), 'the same buffer for the same stream')
    }
  }
})
