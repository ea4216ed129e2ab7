import t from 'tap'
import { BpfObject } from '@kbx/bpf'
import { XskError } from '@kbx/errors'
import { bpfObjectPath } from '@kbx/ffi'
import { buildUdpFrame, internetChecksum, ipv4PseudoHeaderSum, parseFrame } from '@kbx/net'
import { Umem, XskSocket, probeAfXdp, probeZeroCopy, steerTo } from './index.js'
import { addressPair, createVethPair, sendUdpFromNamespace, startUdpSink, type VethPair } from './testing/netns.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** xdp_xsk_redirect on pair.a, matching UDP to `port` only. */
function redirectProgram(t: Teardown, pair: VethPair, port: number): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  t.teardown(() => obj.close())
  obj.setRodata('match_dport_min', port)
  obj.setRodata('match_dport_max', port)
  obj.load()
  const link = obj.program('kbx_xsk_redirect').attachXdp(pair.a, 'native')
  t.teardown(() => link.detach())
  return obj
}

/** IPv4 header and UDP checksums of a parsed frame verify (sum to 0xffff, i.e. fold to 0). */
function checksumsValid(frame: Buffer): boolean {
  const ipStart = 14
  const ihl = (frame[ipStart]! & 0x0f) * 4
  if (internetChecksum(frame, ipStart, ipStart + ihl) !== 0) return false
  const udpStart = ipStart + ihl
  const udpLength = frame.readUInt16BE(udpStart + 4)
  const pseudoSum = ipv4PseudoHeaderSum(frame.readUInt32BE(ipStart + 12), frame.readUInt32BE(ipStart + 16), 17, udpLength)
  return internetChecksum(frame, udpStart, udpStart + udpLength, pseudoSum) === 0
}

t.test('AF_XDP RX: datagrams sent into the peer arrive intact through the TypeScript API', async (t) => {
  const pair = createVethPair(t)
  addressPair(pair, '10.77.0.2/24', '10.77.0.1')
  const port = 7001
  const obj = redirectProgram(t, pair, port)
  const umem = Umem.create({ frameCount: 1024 })
  t.teardown(() => umem.close())
  const socket = XskSocket.create({ umem, iface: pair.a, rx: true, tx: false, log: () => {} })
  t.equal(socket.hasTx, false)
  steerTo(obj, [socket])

  const payloads = Array.from({ length: 100 }, (_, i) => `kbx-rx-${i}-${'x'.repeat(i)}`)
  sendUdpFromNamespace(pair, '10.77.0.1', port, payloads)
  // Another port is not matched: it goes to the kernel, not to the socket.
  sendUdpFromNamespace(pair, '10.77.0.1', port + 1, ['not-for-the-socket'])

  const received: string[] = []
  const batch = socket.rxBatch(32)
  const deadline = Date.now() + 5000
  let badChecksums = 0
  let wrongPort = 0
  while (received.length < payloads.length && Date.now() < deadline) {
    const n = socket.receiveInto(batch, 5)
    for (let i = 0; i < n; i++) {
      const data = batch.data(i)
      const parsed = parseFrame(data)
      if (!parsed.ok || !parsed.udp) throw new Error(`unparsable frame ${data.toString('hex')}`)
      if (parsed.udp.dstPort !== port) wrongPort++
      if (!checksumsValid(data)) badChecksums++
      t.equal(parsed.eth.dstMac, pair.aMac)
      received.push(data.subarray(parsed.payloadOffset, parsed.payloadOffset + parsed.payloadLength).toString())
    }
  }
  // Wait a little for a straggler that should not come.
  socket.receiveInto(batch, 50)
  for (let i = 0; i < batch.count; i++) received.push(batch.data(i).toString())
  socket.release(batch)

  t.same(received.sort(), [...payloads].sort(), 'every payload arrived, once, and nothing else')
  t.equal(badChecksums, 0, 'IPv4 and UDP checksums verify')
  t.equal(wrongPort, 0)

  const stats = socket.statistics()
  for (const field of ['rxDropped', 'rxInvalidDescs', 'txInvalidDescs', 'rxRingFull', 'fillRingEmpty', 'txRingEmpty'] as const) {
    t.type(stats[field], 'bigint', `statistics().${field}`)
  }
  t.equal(stats.rxPackets, 100n)
  t.equal(stats.rxDropped, 0n)
  t.equal(stats.anomalies, 0n)
  const a = umem.accounting()
  t.equal(a.free + a.fill + a.rx + a.tx + a.user, a.total)
  t.equal(a.rx, 0)
})

t.test('AF_XDP TX: frames built with @kbx/net reach a kernel UDP socket in the peer namespace', async (t) => {
  const pair = createVethPair(t)
  addressPair(pair, '10.78.0.2/24', '10.78.0.1')
  const port = 7002
  const umem = Umem.create({ frameCount: 512 })
  t.teardown(() => umem.close())
  const socket = XskSocket.create({ umem, iface: pair.a, rx: false, tx: true, log: () => {} })
  t.equal(socket.hasRx, false)
  t.equal(umem.accounting().fill, 0, 'a TX-only socket posts no fill frames')

  const payloads = Array.from({ length: 150 }, (_, i) => `kbx-tx-${i}`)
  const sink = await startUdpSink(t, pair, '10.78.0.2', port, payloads.length)
  // The one-call-per-batch pattern: write the fresh frames, send and refill in the same call.
  const batch = socket.txBatch(64)
  let next = 0
  batch.allocate(Math.min(batch.capacity, payloads.length))
  while (batch.count > 0) {
    for (let i = batch.fresh; i < batch.count; i++) {
      const frame = buildUdpFrame({
        srcMac: pair.aMac,
        dstMac: pair.bMac,
        srcIp: '10.78.0.1',
        dstIp: '10.78.0.2',
        srcPort: 40000,
        dstPort: port,
        payload: Buffer.from(payloads[next++]!),
      })
      frame.copy(batch.frame(i))
      batch.setLength(i, frame.length)
    }
    socket.send(batch, Math.min(payloads.length - next, batch.capacity))
  }
  t.equal(next, payloads.length, 'every payload went into a frame')
  t.ok(socket.drain(2000), 'all frames completed')
  const got = await sink.done
  t.same(got.map((d) => d.payload).sort(), [...payloads].sort(), 'every datagram arrived with its payload')
  t.ok(got.every((d) => d.from === '10.78.0.1' && d.port === 40000), 'from our address and port')
  const stats = socket.statistics()
  t.equal(stats.txCompleted, 150n)
  t.equal(stats.txInvalidDescs, 0n)
  t.match(umem.accounting(), { free: 512, tx: 0, user: 0 })
})

t.test("zero-copy: 'try' falls back to copy mode, 'require' fails clearly, 'never' does not ask", async (t) => {
  const pair = createVethPair(t)
  const umem = Umem.create({ frameCount: 256 })
  t.teardown(() => umem.close())

  const logged: string[] = []
  const tried = XskSocket.create({ umem, iface: pair.a, zeroCopy: 'try', log: (m) => logged.push(m) })
  t.equal(tried.zeroCopy, false, 'veth binds in copy mode')
  t.equal(tried.zeroCopyRefused, 'EOPNOTSUPP')
  t.match(logged, [/zero-copy refused \(EOPNOTSUPP\), using copy mode/], 'the fallback is logged')
  tried.close()

  const err = (() => {
    try {
      XskSocket.create({ umem, iface: pair.a, zeroCopy: 'require', log: () => {} })
      return undefined
    } catch (e) {
      return e
    }
  })()
  t.type(err, XskError)
  t.equal((err as XskError).code, 'EOPNOTSUPP')
  t.equal((err as XskError).op, 'bind AF_XDP socket')
  t.match((err as XskError).message, /^bind AF_XDP socket failed: EOPNOTSUPP \(\S+ queue 0: zero-copy/)
  t.match((err as XskError).hint, /zero-copy/)
  t.match(umem.accounting(), { free: 256, sockets: 0 }, 'a failed create leaks no frame')

  const never: string[] = []
  const copy = XskSocket.create({ umem, iface: pair.a, zeroCopy: 'never', log: (m) => never.push(m) })
  t.equal(copy.zeroCopy, false)
  t.equal(copy.zeroCopyRefused, undefined, 'zero-copy was not asked for')
  t.same(never, [])
  copy.close()

  const skb = XskSocket.create({ umem, iface: pair.a, mode: 'skb', log: () => {} })
  t.equal(skb.zeroCopyRefused, undefined, "mode 'skb' implies copy mode")
  skb.close()
  t.throws(() => XskSocket.create({ umem, iface: pair.a, mode: 'skb', zeroCopy: 'require' }), /native mode/)

  t.match(probeAfXdp(pair.a), { ok: true, zeroCopy: false, code: 'EOPNOTSUPP' }, 'probeAfXdp: copy mode works')
  t.match(probeZeroCopy(pair.a), { ok: false, zeroCopy: false, code: 'EOPNOTSUPP' }, 'probeZeroCopy: refused')
  t.match(probeAfXdp('kbxnosuchif0'), { ok: false, code: 'ENODEV' })
})

t.test('binding a bound queue fails with EBUSY after the retries', async (t) => {
  const pair = createVethPair(t)
  const first = Umem.create({ frameCount: 128 })
  t.teardown(() => first.close())
  const second = Umem.create({ frameCount: 128 })
  t.teardown(() => second.close())
  XskSocket.create({ umem: first, iface: pair.a, queue: 0, log: () => {} })

  const err = (() => {
    try {
      XskSocket.create({ umem: second, iface: pair.a, queue: 0, bindRetries: 2, retryDelayMs: 10, log: () => {} })
      return undefined
    } catch (e) {
      return e
    }
  })()
  t.type(err, XskError)
  t.equal((err as XskError).code, 'EBUSY')
  t.match((err as XskError).message, /^bind AF_XDP socket failed: EBUSY \(\S+ queue 0: .*3 attempts\)$/)
  t.match((err as XskError).hint, /stayed busy through 2 retries/)
  t.match(second.accounting(), { free: 128, sockets: 0 })

  // The same UMEM on the same queue is refused before the kernel is asked.
  t.throws(() => XskSocket.create({ umem: first, iface: pair.a, queue: 0, log: () => {} }), /already has a socket there/)
  t.throws(() => XskSocket.create({ umem: first, iface: 'kbxnosuchif0' }), /look up interface/)
})
