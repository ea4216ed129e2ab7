// ab-feed --replay without a line: which captured packets are replayable, how they are readdressed, the send
// lists and their timing, and the native copier writing them into TX batches.
import t from 'tap'
import { buildTcpFrame, buildUdpFrame, parseFrame, type CapturePacket } from '@kbx/net'
import { TxBatch, Umem } from '@kbx/xsk'
import { replayPlan } from './replay.js'
import { ReplayLineWriter, prepareFrames, replayablePackets } from './replay-frames.js'

const udp = (i: number, extra: Partial<Parameters<typeof buildUdpFrame>[0]> = {}) =>
  buildUdpFrame({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.9.9.9', dstIp: '10.0.1.2', srcPort: 5000, dstPort: 15001, payload: Buffer.alloc(36 + i, i), ...extra })
const packet = (data: Buffer, linkType = 1, tsNs = 1_000n, originalLength = data.length): CapturePacket => ({ tsNs, data, originalLength, linkType, interfaceId: 0 })
const ip = (frame: Buffer) => frame.subarray(14)

t.test('replayable: IPv4 UDP under Ethernet (VLANs too), Linux cooked v1/v2 and raw IP; the rest counted by reason', async (t) => {
  const sll = Buffer.concat([Buffer.alloc(14), Buffer.from([0x08, 0x00]), ip(udp(1))])
  const sll2 = Buffer.concat([Buffer.from([0x08, 0x00]), Buffer.alloc(18), ip(udp(2))])
  const { packets, skipped } = replayablePackets([
    packet(udp(0)),
    packet(udp(3, { vlans: [100] })),
    packet(sll, 113),
    packet(sll2, 276),
    packet(ip(udp(4)), 101),
    packet(buildTcpFrame({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 2, window: 100 })),
    packet(udp(5, { moreFragments: true })),
    packet(udp(6), 1, 1n, 2000),
    packet(udp(7).subarray(0, 50)),
    packet(ip(udp(8)), 0xffff),
  ])
  t.equal(packets.length, 5, 'five replayable')
  t.same(packets.map((p) => parseFrame(p.frame).ok && (parseFrame(p.frame) as { payloadLength: number }).payloadLength), [36, 39, 37, 38, 40], 'their payloads whole')
  t.same(skipped, { notIpv4Udp: 2, fragment: 1, cutShort: 1, linkType: 1 })
})

t.test('readdressed to the bed with fresh checksums; multicast kept on request; ports rewritten or kept', async (t) => {
  const group = udp(1, { dstIp: '233.54.12.1', dstMac: '01:00:5e:36:0c:01', ttl: 7, options: Buffer.from([1, 1, 1, 1]) })
  const { packets } = replayablePackets([packet(udp(0, { ttl: 33 })), packet(group)])
  const to = { srcMac: '0a:00:00:00:00:0a', dstMac: '0a:00:00:00:00:0b', srcIp: '10.0.1.1', dstIp: '10.0.1.2', dstPort: 8080, keepMulticast: true }
  const prepared = prepareFrames(packets, to)
  t.equal(prepared.multicast, 1)
  const frames = [0, 1].map((i) => prepared.bytes.subarray(prepared.offsets[i]!, prepared.offsets[i + 1]!))
  const [u, m] = frames.map((f) => parseFrame(f)) as [ReturnType<typeof parseFrame> & { ok: true }, ReturnType<typeof parseFrame> & { ok: true }]
  t.same([u.eth.srcMac, u.eth.dstMac, u.ipv4!.src, u.ipv4!.dst, u.udp!.srcPort, u.udp!.dstPort, u.ipv4!.ttl], [to.srcMac, to.dstMac, '10.0.1.1', '10.0.1.2', 5000, 8080, 33], 'unicast: the bed')
  t.same([m.eth.dstMac, m.ipv4!.src, m.ipv4!.dst, m.udp!.dstPort, m.ipv4!.ttl, [...m.ipv4!.options]], ['01:00:5e:36:0c:01', '10.0.1.1', '233.54.12.1', 15001, 7, [1, 1, 1, 1]], 'multicast: group, MAC, port, TTL, options kept')
  for (const f of [u, m]) t.ok(f.ipv4!.checksumValid && f.udp!.checksumValid, 'checksums valid')
  t.same(frames[0]!.subarray(u.payloadOffset), udp(0).subarray(42), 'payload unchanged')
  const rewritten = prepareFrames(packets, { ...to, keepMulticast: false, dstPort: undefined })
  const g = parseFrame(rewritten.bytes.subarray(rewritten.offsets[1]!)) as ReturnType<typeof parseFrame> & { ok: true }
  t.same([g.ipv4!.dst, g.eth.dstMac, g.udp!.dstPort, rewritten.multicast], ['10.0.1.2', to.dstMac, 15001, 0], 'without --keep-multicast the group is readdressed; --keep-ports keeps the port')
})

const none = { lossA: 0, lossB: 0, dupA: 0, dupB: 0, delayB: 0, alternate: 0, gap: 0, seed: 1 }

t.test('send lists: the capture on both lines at its times; delay in packets; reordering never sends early', async (t) => {
  const times = Float64Array.from([0, 100, 250, 400, 1000])
  const clean = replayPlan([times], none, 'optiq')
  t.same([...clean.lines[0].entries], [0, 1, 2, 3, 4])
  t.same([...clean.lines[1].dueNs], [...times], 'line B at the capture times')
  const delayed = replayPlan([times], { ...none, delayB: 2 }, 'optiq')
  t.same([...delayed.lines[1].dueNs], [250, 400, 1000, 1250, 1500], 'B two packets late, extrapolated past the end')
  t.same([...delayed.lines[0].dueNs], [...times])
  const big = Float64Array.from({ length: 2000 }, (_, i) => i * 10)
  const reordered = replayPlan([big], { ...none, reorderA: [0.2, 8], dupB: 0.1, lossB: 0.1 }, 'optiq')
  const a = reordered.lines[0]
  t.ok(a.truth.reordered > 0, `reordered ${a.truth.reordered}`)
  t.ok(a.dueNs.every((d, i) => i === 0 || d >= a.dueNs[i - 1]!), 'due times never go back')
  t.ok(a.dueNs.every((d, i) => d >= big[Math.min(...a.entries.subarray(i))]!), 'a packet is never sent before its time')
  t.ok(reordered.lines[1].truth.duplicated > 0 && reordered.lines[1].truth.dropped > 0, 'B duplicated and lost packets')
  const gaps = replayPlan([big], { ...none, gap: 0.05 }, 'optiq')
  t.ok(gaps.withheld.length > 0, 'withheld packets')
  for (const line of gaps.lines) t.ok(gaps.withheld.every((k) => !line.entries.includes(k)), 'on neither line')
  const two = replayPlan([times, Float64Array.from([50, 60])], { ...none, lossA: 0.5 }, 'optiq')
  t.same([...two.lines[1].entries], [0, 1], 'two captures: B its own packets')
  t.same([...two.lines[1].dueNs], [50, 60], 'at its own times')
})

t.test('the native copier writes the sends due, a batch per call, and refuses an entry without a packet', async (t) => {
  const { packets } = replayablePackets([0, 1, 2].map((i) => packet(udp(i))))
  const prepared = prepareFrames(packets, { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.0.1', dstIp: '10.0.0.2', dstPort: 9, keepMulticast: false })
  const umem = Umem.create({ frameCount: 64 })
  t.teardown(() => umem.close())
  const batch = new TxBatch(umem, 4)
  const writer = new ReplayLineWriter(prepared, Uint32Array.from([0, 1, 2, 1, 0, 2]), Float64Array.from([0, 10, 20, 30, 40, 50]), umem)
  t.equal(writer.fill(batch, 15), 2, 'two due by 15 ns')
  t.equal(writer.fill(batch, 100), 2, 'then the batch is full')
  t.equal(writer.nextDueNs, 40)
  const expected = [0, 1, 2, 1].map((p) => prepared.bytes.subarray(prepared.offsets[p]!, prepared.offsets[p + 1]!))
  t.same([0, 1, 2, 3].map((i) => Buffer.from(batch.frame(i).subarray(0, batch.length(i)))), expected, 'the prepared bytes, in send order')
  batch.release()
  t.equal(writer.fill(batch, 100), 2)
  t.ok(writer.done)
  writer.rewind()
  t.equal(writer.next, 0, 'rewound for the next pass')
  batch.release()
  t.throws(() => new ReplayLineWriter(prepared, Uint32Array.from([3]), Float64Array.from([0]), umem), /names packet 3 of 3/)
})
