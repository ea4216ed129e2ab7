import t from 'tap'
import { BpfObject } from '@kbx/bpf'
import { bpfObjectPath } from '@kbx/ffi'
import { buildUdpFrame, parseFrame } from '@kbx/net'
import { Umem, XskSocket, steerTo, type RxBatch } from './index.js'
import { addressPair, createVethPair, startUdpSink, xskBenchInNamespace, type VethPair } from './testing/netns.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** One xdp_xsk_redirect object (default match: any UDP) attached to every interface given. */
function redirectProgram(t: Teardown, ifaces: string[]): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  t.teardown(() => obj.close())
  obj.load()
  for (const iface of ifaces) {
    const link = obj.program('kbx_xsk_redirect').attachXdp(iface, 'native')
    t.teardown(() => link.detach())
  }
  return obj
}

/** Receives on every socket until `total` descriptors arrived or 5 s passed; UDP destination ports per socket. */
function receiveAll(sockets: XskSocket[], total: number): number[][] {
  const ports: number[][] = sockets.map(() => [])
  const batches: RxBatch[] = sockets.map((s) => s.rxBatch(64))
  let got = 0
  const deadline = Date.now() + 5000
  while (got < total && Date.now() < deadline) {
    sockets.forEach((socket, k) => {
      const batch = batches[k]!
      const n = socket.receiveInto(batch, 1)
      for (let i = 0; i < n; i++) {
        const parsed = parseFrame(batch.data(i))
        ports[k]!.push(parsed.ok && parsed.udp ? parsed.udp.dstPort : -1)
      }
      got += n
    })
  }
  sockets.forEach((socket, k) => socket.release(batches[k]!))
  return ports
}

function benchTx(pair: VethPair, queue: number, count: number, dport: number): void {
  const result = xskBenchInNamespace(pair, [
    'tx', '--iface', pair.b, '--queue', `${queue}`, '--count', `${count}`, '--dport', `${dport}`,
    '--zero-copy', 'never', '--frames', '256',
  ])
  if (result['completed'] !== count) throw new Error(`xsk_bench sent ${JSON.stringify(result)}`)
}

t.test('two sockets on two interfaces share one UMEM', async (t) => {
  const one = createVethPair(t)
  const two = createVethPair(t)
  const obj = redirectProgram(t, [one.a, two.a])
  const umem = Umem.create({ frameCount: 1024 })
  t.teardown(() => umem.close())
  const s1 = XskSocket.create({ umem, iface: one.a, fillFrames: 200, log: () => {} })
  const s2 = XskSocket.create({ umem, iface: two.a, fillFrames: 200, log: () => {} })
  t.equal(s1.shared, false, 'the first socket owns the registration')
  t.equal(s2.shared, true, 'the second binds with XDP_SHARED_UMEM')
  t.equal(s2.zeroCopy, s1.zeroCopy, 'and inherits its mode')
  t.match(umem.accounting(), { fill: 400, free: 624, sockets: 2 })
  steerTo(obj, [s1, s2])

  // RX on both: each socket gets exactly its interface's frames.
  benchTx(one, 0, 30, 9201)
  benchTx(two, 0, 40, 9202)
  const [p1, p2] = receiveAll([s1, s2], 70)
  t.same(p1, Array(30).fill(9201), 'socket 1 got the 30 frames of interface 1')
  t.same(p2, Array(40).fill(9202), 'socket 2 got the 40 frames of interface 2')

  // TX on both from the shared pool, each to a kernel UDP socket behind its interface.
  addressPair(one, '10.79.1.2/24', '10.79.1.1')
  addressPair(two, '10.79.2.2/24', '10.79.2.1')
  const sink1 = await startUdpSink(t, one, '10.79.1.2', 7101, 20)
  const sink2 = await startUdpSink(t, two, '10.79.2.2', 7102, 20)
  const sends: [XskSocket, VethPair, string, number][] = [
    [s1, one, '10.79.1', 7101],
    [s2, two, '10.79.2', 7102],
  ]
  for (const [socket, pair, net, port] of sends) {
    const batch = socket.txBatch(20)
    t.equal(batch.allocate(), 20)
    for (let i = 0; i < 20; i++) {
      const frame = buildUdpFrame({
        srcMac: pair.aMac,
        dstMac: pair.bMac,
        srcIp: `${net}.1`,
        dstIp: `${net}.2`,
        srcPort: 5000,
        dstPort: port,
        payload: Buffer.from(`${pair.a}-${i}`),
      })
      frame.copy(batch.frame(i))
      batch.setLength(i, frame.length)
    }
    t.equal(socket.send(batch), 20)
  }
  t.ok(s1.drain(2000) && s2.drain(2000))
  const got1 = (await sink1.done).map((d) => d.payload).sort()
  const got2 = (await sink2.done).map((d) => d.payload).sort()
  t.same(got1, Array.from({ length: 20 }, (_, i) => `${one.a}-${i}`).sort())
  t.same(got2, Array.from({ length: 20 }, (_, i) => `${two.a}-${i}`).sort())
  t.match(umem.accounting(), { fill: 400, free: 624, rx: 0, tx: 0, user: 0 })

  s2.close()
  t.match(umem.accounting(), { fill: 200, free: 824, sockets: 1 }, "the shared socket's frames come back at once")
  s1.close()
  t.match(umem.accounting(), { free: 1024, sockets: 0, parked: 0 })
})

t.test('sockets on several queues of a multi-queue veth', async (t) => {
  const pair = createVethPair(t, { queues: 4 })
  const obj = redirectProgram(t, [pair.a])
  const umem = Umem.create({ frameCount: 2048, fillSize: 512 })
  t.teardown(() => umem.close())
  const sockets = [0, 1, 2, 3].map((queue) =>
    XskSocket.create({ umem, iface: pair.a, queue, rx: true, tx: false, fillFrames: 256, log: () => {} }),
  )
  t.same(sockets.map((s) => s.queue), [0, 1, 2, 3])
  t.match(umem.accounting(), { fill: 1024, free: 1024, sockets: 4 })
  steerTo(obj, sockets)

  // AF_XDP TX on queue q of the peer lands on RX queue q here.
  for (let q = 0; q < 4; q++) benchTx(pair, q, 25 + q, 9300 + q)
  const ports = receiveAll(sockets, 25 + 26 + 27 + 28)
  for (let q = 0; q < 4; q++) {
    t.same(ports[q], Array(25 + q).fill(9300 + q), `queue ${q} received its ${25 + q} frames`)
  }

  // Re-steering to a subset sends the other queues' traffic back to the kernel.
  steerTo(obj, [sockets[2]!])
  benchTx(pair, 1, 10, 9301)
  benchTx(pair, 2, 10, 9302)
  const after = receiveAll(sockets, 10)
  t.same(after, [[], [], Array(10).fill(9302), []], 'only queue 2 is still steered')
  t.equal(obj.map('xsk_slots').lookup(Buffer.from([...u32le(sockets[0]!.ifindex), ...u32le(0)])), undefined)
  const a = umem.accounting()
  t.equal(a.free + a.fill + a.rx + a.tx + a.user, a.total)
})

function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]
}
