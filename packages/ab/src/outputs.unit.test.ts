// --out parsing, and the udp output on loopback: kbx_ab_rx_ingest → kbx_ab_out_emit → sendmmsg → a socket.
import dgram from 'node:dgram'
import t from 'tap'
import { buildUdpFrame } from '@kbx/net'
import { FORMAT_CODE, encodeOptiq } from './format.js'
import { NativeOutputs, checkOutputs, parseOutput } from './outputs.js'
import { ReceiveTracker } from './tracker.js'

const hosts = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.1.1', dstIp: '10.0.1.2', srcPort: 1, dstPort: 8080 }
const payload = (sequence: number) => encodeOptiq({ sessionId: 9, sequence, orderId: BigInt(sequence) })

t.test('--out parsing', async (t) => {
  t.same(parseOutput('udp:10.0.0.2:9000'), { kind: 'udp', ip: '10.0.0.2', port: 9000, multicast: false })
  t.same(parseOutput('udp:239.1.2.3:9000'), { kind: 'udp', ip: '239.1.2.3', port: 9000, multicast: true })
  t.same(parseOutput('shm:feed'), { kind: 'shm', name: 'feed', slots: 16384, slotSize: 256 })
  t.same(parseOutput('shm:feed,slots=1024,slot-size=512'), { kind: 'shm', name: 'feed', slots: 1024, slotSize: 512 })
  t.same(parseOutput('pcap:/tmp/x.pcap'), { kind: 'pcap', file: '/tmp/x.pcap' })
  for (const bad of ['udp:10.0.0.2', 'udp:10.0.0.300:9000', 'udp:10.0.0.2:0', 'shm:', 'shm:a/b', 'shm:x,slots=3', 'shm:x,slot-size=100', 'shm:x,foo=1', 'pcap:', 'tcp:1.2.3.4:5', 'udp'])
    t.throws(() => parseOutput(bad), { name: 'UsageError' }, bad)
})

t.test('--out combinations: usage errors', async (t) => {
  t.throws(() => checkOutputs([parseOutput('udp:239.1.1.1:9000')], undefined), { name: 'UsageError', message: /needs --out-iface/ })
  t.throws(() => checkOutputs([parseOutput('udp:10.1.1.1:9000')], 'lo'), { name: 'UsageError', message: /multicast udp outputs only/ })
  t.throws(() => checkOutputs([parseOutput('shm:a'), parseOutput('shm:a,slots=8')], undefined), { name: 'UsageError', message: /one name/ })
  t.throws(() => checkOutputs(Array.from({ length: 17 }, (_, i) => parseOutput(`shm:r${i}`)), undefined), { name: 'UsageError', message: /at most 16/ })
  t.doesNotThrow(() => checkOutputs([parseOutput('udp:239.1.1.1:9000'), parseOutput('shm:a'), parseOutput('pcap:x')], 'lo'))
})

t.test('udp output on loopback: every delivered payload, in delivery order, one datagram each, batched per flush', async (t) => {
  const socket = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const received: Buffer[] = []
  socket.on('message', (m) => received.push(m))
  const rx = new ReceiveTracker({ format: 'optiq', window: 64 })
  const outputs = NativeOutputs.open([parseOutput(`udp:127.0.0.1:${socket.address().port}`)], { format: FORMAT_CODE.optiq })
  rx.attachOutputs(outputs)
  t.teardown(() => {
    rx.close()
    outputs.close()
    socket.close()
  })
  const order = [1, 2, 4, 3, 5, 7, 6]
  for (const n of order) rx.ingest(buildUdpFrame({ ...hosts, payload: payload(n) }), n % 2 ? 'A' : 'B')
  rx.ingest(buildUdpFrame({ ...hosts, payload: Buffer.from('not a feed') })) // not delivered: not sent
  for (let i = 0; i < 100 && received.length < order.length; i++) await new Promise((r) => setTimeout(r, 10))
  t.same(received.map((m) => m.readUInt32LE(8)), order, 'the payloads, in delivery order')
  t.same(received.map((m) => [...m]), order.map((n) => [...payload(n)]), 'as received')
  const [c] = outputs.counters()
  t.same(c, { out: `udp:127.0.0.1:${socket.address().port}`, messages: BigInt(order.length), bytes: BigInt(order.length * 36), errors: 0n, sendCalls: BigInt(order.length) }, 'counters (ingest flushes each frame)')
})

t.test('udp output to a closed port: refused datagrams are counted as errors, not fatal', async (t) => {
  const probe = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve))
  const port = probe.address().port
  probe.close() // nothing listens there now: ICMP port unreachable, then ECONNREFUSED on the connected socket
  const rx = new ReceiveTracker({ format: 'optiq', window: 64 })
  const outputs = NativeOutputs.open([parseOutput(`udp:127.0.0.1:${port}`)], { format: FORMAT_CODE.optiq })
  rx.attachOutputs(outputs)
  t.teardown(() => {
    rx.close()
    outputs.close()
  })
  for (let n = 1; n <= 20; n++) {
    rx.ingest(buildUdpFrame({ ...hosts, payload: payload(n) }))
    await new Promise((r) => setTimeout(r, 2))
  }
  const [c] = outputs.counters()
  t.ok(c!.errors > 0n, `refusals counted: ${c!.errors}`)
  t.equal(c!.messages + c!.errors, 20n, 'every message either sent or counted as refused')
})
