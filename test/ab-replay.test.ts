// ab-feed --replay on real veths: a live impaired feed captured on the bed by tshark (one pcapng of both
// lines, split by interface) and by the feeder itself (--record-a/-b, classic pcap) replays to a fresh ab-arbitrate with the same delivered set and the same gaps; the same capture as
// classic pcap replays as both lines at --speed 2 in about half the time, with impairments on top; a capture
// cut short or not a capture at all is a usage error before anything is sent.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { PcapWriter, buildUdpFrame, parseFrame, readCapture, readPcap } from '@kbx/net'
import { waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'
import { abBed, runFeedOnBed, startArbitrator, type AbBed } from './testing/ab-bed.js'
import { decodePayload, encodeFeedPayload } from '@kbx/ab'

t.setTimeout(240_000)

type Bed = AbBed

/** The (stream/sequence) keys of the optiq data frames in a capture (of one of its interfaces). */
function numbersIn(path: string, interfaceId?: number): string[] {
  const keys: string[] = []
  for (const p of readCapture(path).packets) {
    if (interfaceId !== undefined && p.interfaceId !== interfaceId) continue
    const f = parseFrame(p.data)
    if (!f.ok || !f.udp) continue
    const d = decodePayload('optiq', p.data.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength))
    if (d.kind === 'data') keys.push(`${d.stream}/${d.sequence}`)
  }
  return keys
}

/** Stops the arbitrator once it delivered `expected` numbers; its end event and gap events. */
async function finish(t: Test, arb: ToolRun, expected: number) {
  await waitUntil(`${expected} numbers delivered`, () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= expected), 20000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data
  const gaps = arb.events.filter((e) => e.event === 'gap').map((e) => `${e.data['stream']}:${e.data['from']}-${e.data['to']}`).sort()
  return { end, gaps }
}

function runFeed(net: TestNet, bed: Bed, args: string[]): Promise<ToolRun> {
  return runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, ...args])
}

/** tshark on interfaces (one pcapng, an interface block each), the feed's packets only (a filter before the first -i applies to all). */
async function capture(net: TestNet, ns: string | null, ifaces: string[], path: string) {
  const child = net.spawn(ns, 'tshark', ['-f', 'udp dst port 8080', ...ifaces.flatMap((i) => ['-i', i]), '-w', path, '-F', 'pcapng'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await waitUntil(`tshark to capture on ${ifaces.join(', ')}`, () => /Capturing on/.test(stderr) || child.exitCode !== null)
  return {
    stop: async () => {
      child.kill('SIGINT')
      return { code: await exited, stderr }
    },
  }
}

t.test('a live feed captured by tshark replays with the same delivered set and gaps; pcap at --speed 2 in half the time', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-replay-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const both = join(dir, 'both.pcapng')

  // The live run: losses on both lines, reordering and true gaps, 2 s at 3000 numbers/s. AF_XDP TX skips the
  // sender's taps and XDP runs before the receiver's, so tshark records the same feed (same seed: the same
  // frames) on the receiving ends without an arbitrator attached.
  const feedArgs = ['--count', '6000', '--rate', '3000', '--seed', '11', '--loss-a', '0.1', '--loss-b', '0.1', '--gap', '0.01', '--reorder-b', '0.05:8']
  const tshark = await capture(net, null, [bed.dstA.name, bed.dstB.name], both)
  const recorded = await runFeed(net, bed, feedArgs)
  t.equal(recorded.child.exitCode, 0, recorded.stderr())
  await new Promise((r) => setTimeout(r, 500)) // tshark writes what it has seen
  t.equal((await tshark.stop()).code, 0, 'tshark stopped cleanly')
  const live = await startArbitrator(net, bed, ['--pcap', join(dir, 'live.pcap')])
  const recA = join(dir, 'recorded-a.pcap')
  const recB = join(dir, 'recorded-b.pcap')
  const fd = await runFeed(net, bed, [...feedArgs, '--record-a', recA, '--record-b', recB])
  t.equal(fd.child.exitCode, 0, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  const liveResult = await finish(t, live, truth['union'])
  t.equal(readCapture(both).format, 'pcapng')
  t.equal(numbersIn(both, 0).length, truth['lines'].A.sent, 'tshark captured every frame of line A (its interface 0)')
  t.equal(numbersIn(both, 1).length, truth['lines'].B.sent, 'and of line B (interface 1)')
  const liveSet = [...new Set(numbersIn(join(dir, 'live.pcap')))].sort()
  t.equal(liveSet.length, truth['union'], 'the live run delivered the union')

  // Replay of tshark's capture, its two interfaces as the two lines, original timing.
  const again = await startArbitrator(net, bed, ['--pcap', join(dir, 'replayed.pcap')])
  const replay = await runFeed(net, bed, ['--replay', both, '--split-interfaces'])
  t.equal(replay.child.exitCode, 0, replay.stderr())
  const replayEnd = replay.events.find((e) => e.event === 'end')!.data
  t.equal(replayEnd['lines'].A.sent, truth['lines'].A.sent, 'line A replayed every captured frame')
  t.equal(replayEnd['lines'].B.sent, truth['lines'].B.sent, 'line B replayed every captured frame')
  t.equal(replayEnd['union'], truth['union'], 'the replay reports the live union')
  t.equal(replayEnd['streams']['1000'].count, truth['union'], 'per stream: every number')
  const span = replay.events.find((e) => e.event === 'start')!.data['spanSeconds'] as number
  t.ok(span > 1.5 && span < 3, `the capture spans the live run's 2 s (${span} s)`)
  t.ok(replayEnd['seconds'] >= span * 0.95, `original timing: ${replayEnd['seconds']} s for a span of ${span} s`)
  const replayed = await finish(t, again, truth['union'])
  t.equal(replayed.end['delivered'], truth['union'], 'delivered = the live union')
  t.same([...new Set(numbersIn(join(dir, 'replayed.pcap')))].sort(), liveSet, 'the same delivered set as the live run')
  t.same(replayed.gaps, liveResult.gaps, 'the same gaps as the live run')
  t.equal(replayed.end['duplicatesDelivered'], 0)

  // The feeder's own recording of the live run (classic pcap) replays the same, at top speed.
  t.equal(readPcap(recA).packets.length, truth['lines'].A.sent, 'the feeder recorded every frame of line A')
  t.equal(readPcap(recB).packets.length, truth['lines'].B.sent, 'and of line B')
  const fromRecording = await startArbitrator(net, bed, ['--pcap', join(dir, 'recorded.pcap')])
  const recordedRun = await runFeed(net, bed, ['--replay', recA, '--replay', recB, '--top-speed'])
  t.equal(recordedRun.child.exitCode, 0, recordedRun.stderr())
  t.equal(recordedRun.events.find((e) => e.event === 'end')!.data['union'], truth['union'])
  const recordedResult = await finish(t, fromRecording, truth['union'])
  t.same([...new Set(numbersIn(join(dir, 'recorded.pcap')))].sort(), liveSet, "the feeder's recording delivers the live set")
  t.same(recordedResult.gaps, liveResult.gaps, 'and the same gaps')

  // Line A's capture as classic pcap, replayed as both lines twice as fast, with losses on top.
  const pcapA = join(dir, 'a.pcap')
  const writer = PcapWriter.open(pcapA, { nanosecond: true })
  for (const p of readCapture(both).packets) if (p.interfaceId === 0) writer.write(p.data, p.tsNs)
  writer.close()
  t.equal(readPcap(pcapA).packets.length, truth['lines'].A.sent, 'the classic pcap holds line A')
  const fast = await startArbitrator(net, bed, ['--pcap', join(dir, 'fast.pcap')])
  const fastRun = await runFeed(net, bed, ['--replay', pcapA, '--speed', '2', '--loss-a', '0.3', '--loss-b', '0.3', '--gap', '0.01', '--seed', '4'])
  t.equal(fastRun.child.exitCode, 0, fastRun.stderr())
  const fastEnd = fastRun.events.find((e) => e.event === 'end')!.data
  const aNumbers = new Set(numbersIn(both, 0)).size
  t.ok(fastEnd['withheld'].count > 0, `numbers withheld from both lines: ${fastEnd['withheld'].count}`)
  t.equal(fastEnd['union'] + fastEnd['withheld'].count, aNumbers, "the union and the withheld numbers are line A's capture")
  t.ok(fastEnd['lines'].A.dropped > 0 && fastEnd['lines'].B.dropped > 0, 'both lines lost packets')
  const ratio = fastEnd['seconds'] / replayEnd['seconds']
  t.ok(ratio > 0.3 && ratio < 0.7, `--speed 2 takes about half the time: ${fastEnd['seconds']} s vs ${replayEnd['seconds']} s`)
  const fastResult = await finish(t, fast, fastEnd['union'])
  t.equal(fastResult.end['delivered'], fastEnd['union'], "delivered = the replay's union")
  t.equal(fastResult.end['duplicatesDelivered'], 0)
})

t.test('a capture cut short or not a capture: exit 2 before anything is sent; a missing one: exit 1', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-replay-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const whole = join(dir, 'whole.pcap')
  const writer = PcapWriter.open(whole)
  const frame = Buffer.alloc(78)
  frame.writeUInt16BE(0x0800, 12)
  for (let i = 0; i < 3; i++) writer.write(frame, 1_000_000_000n * BigInt(i + 1))
  writer.close()
  const cut = join(dir, 'cut.pcap')
  writeFileSync(cut, readFileSync(whole).subarray(0, 24 + 16 + 78 + 20))
  const garbage = join(dir, 'garbage.pcapng')
  writeFileSync(garbage, Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a]), Buffer.alloc(40, 0xff)]))
  const udp = join(dir, 'udp.pcap')
  const udpWriter = PcapWriter.open(udp)
  udpWriter.write(buildUdpFrame({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.9.9.9', dstIp: '10.0.1.2', srcPort: 1, dstPort: 2, payload: encodeFeedPayload('optiq', 0, 1n) }), 1n)
  udpWriter.close()
  for (const [args, code, message] of [
    [['--replay', cut], 2, /cut short in the middle of a packet \(1 whole packets before it\)/],
    [['--replay', garbage], 2, /not a valid pcapng file/],
    [['--replay', whole], 2, /holds no IPv4 UDP packet to replay \(3 packets: 3 notIpv4Udp/],
    [['--replay', udp, '--split-interfaces'], 2, /holds packets of 1 interface\(s\), not two/],
    [['--replay', udp, '--replay', udp, '--gap', '0.1'], 2, /need one capture replayed on both/],
    [['--replay', udp, '--replay', udp, '--replay', udp], 2, /one capture \(both lines\) or two/],
    [['--replay', udp, '--speed', '0'], 2, /--speed must be a number above 0/],
    [['--replay', join(dir, 'missing.pcap')], 1, /read capture .*missing\.pcap/],
  ] as const) {
    const run = await runFeed(net, bed, [...args])
    t.equal(run.child.exitCode, code, `${args.join(' ')}: exit ${code}`)
    t.match(run.stderr(), message, 'a clear error')
    t.notOk(run.events.some((e) => e.event === 'start'), 'no start event: nothing was sent')
  }
})

t.test('--loop replays the capture pass after pass until --duration, at its timing or at top speed', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-replay-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // 100 optiq packets 1 ms apart (a pass: 100 ms), sent by some venue to a multicast group.
  const path = join(dir, 'venue.pcap')
  const writer = PcapWriter.open(path, { nanosecond: true })
  for (let i = 0; i < 100; i++) {
    const payload = encodeFeedPayload('optiq', 0, BigInt(i + 1))
    writer.write(buildUdpFrame({ srcMac: '02:00:00:00:00:01', dstMac: '01:00:5e:36:0c:01', srcIp: '10.9.9.9', dstIp: '233.54.12.1', srcPort: 5000, dstPort: 15001, payload }), 1_800_000_000_000_000_000n + BigInt(i) * 1_000_000n)
  }
  writer.close()
  const timed = await runFeed(net, bed, ['--replay', path, '--loop', '--duration', '1', '--keep-multicast'])
  t.equal(timed.child.exitCode, 0, timed.stderr())
  const start = timed.events.find((e) => e.event === 'start')!.data
  t.same(start['multicast'], { A: 100, B: 100 }, 'every packet kept its group')
  const end = timed.events.find((e) => e.event === 'end')!.data
  t.equal(end['stoppedBy'], 'duration')
  t.ok(end['passes'] >= 5 && end['passes'] <= 10, `about ten 100-ms passes in a second: ${end['passes']}`)
  t.ok(end['lines'].A.sent >= end['passes'] * 100, `line A sent every pass: ${end['lines'].A.sent}`)
  t.equal(end['union'], 100, 'the numbers of one pass')
  t.same(end['streams'], { '1000': { count: 100, first: '1', last: '100' } })
  const fast = await runFeed(net, bed, ['--replay', path, '--loop', '--top-speed', '--duration', '0.5'])
  t.equal(fast.child.exitCode, 0, fast.stderr())
  const fastEnd = fast.events.find((e) => e.event === 'end')!.data
  t.ok(fastEnd['passes'] > 20, `top speed: ${fastEnd['passes']} passes in 0.5 s`)
})
