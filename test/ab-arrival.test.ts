// ab-arbitrate --xdp-arrival and --busy-poll on the ab bed: ab-feed → two real veth lines → ab-arbitrate (XDP +
// AF_XDP) → its shm ring, read by native/build/ab_consumer (the bench's consumer). Every delivered packet carries
// the XDP program's arrival stamp; what the consumer measures from it is never less than what the loop measured
// to its RX ring; spinning delivers the union like sleeping does.
import { join } from 'node:path'
import t from 'tap'
import { xdpAttachmentOf } from '@kbx/bpf'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import { AB_ARBITRATE, abBed, runFeedOnBed, startArbitrator } from './testing/ab-bed.js'

t.setTimeout(180_000)

const CONSUMER = join(repoRoot, 'native/build/ab_consumer')

t.test('--xdp-arrival --busy-poll: every delivered packet stamped in XDP; consumer latency ≥ the ring latency', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const name = `kbx-test-arrival-${process.pid}`
  const arb = await startArbitrator(net, bed, ['--xdp-arrival', '--busy-poll', '--out', `shm:${name}`])
  const start = arb.events.find((e) => e.event === 'start')!.data
  t.same([start['busyPoll'], start['xdpArrival']], [true, true], 'the start event says how it runs')
  const union = 3000
  const consumer = followTool(net.spawn(null, CONSUMER, ['shm', name, String(union), '3000'], { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('the consumer to map the ring', () => consumer.stderr().includes('ready') || consumer.child.exitCode !== null)
  const feed = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', String(union), '--rate', '20000', '--loss-a', '0.3'])
  t.equal(feed.child.exitCode, 0, feed.stderr())
  t.equal(feed.events.find((e) => e.event === 'end')!.data['union'], union, 'loss on line A only: the union is every number')
  await consumer.exited
  await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 30000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data
  t.equal(end['delivered'], union, 'delivered = the union')
  const arrival = end['arrival'] as { stamped: number; unstamped: number; toRingUs: { count: number; p50: number; max: number } }
  t.same([arrival.stamped, arrival.unstamped, arrival.toRingUs.count], [union, 0, union], 'every delivered packet carried its XDP arrival time')
  t.ok(arrival.toRingUs.p50 > 0 && arrival.toRingUs.max < 10_000_000, `XDP arrival → RX ring: p50 ${arrival.toRingUs.p50} µs, max ${arrival.toRingUs.max} µs`)

  // Its one stdout line is not a tool event: the raw object.
  const read = (consumer.events.at(-1) ?? {}) as unknown as { received: number; matched: number; negative: number; latencyNs: { p50: number } }
  t.same([read.received, read.matched], [union, union], `the consumer read every message: ${consumer.stderr()}`)
  t.equal(read.negative, 0, 'no message was read before its arrival time')
  // The consumer reads a message after the loop took it from the ring: its p50 is at least the ring's (the ring's
  // histogram buckets are up to 1/16 wide).
  t.ok(read.latencyNs.p50 / 1000 >= arrival.toRingUs.p50 * 0.93, `consumer p50 ${read.latencyNs.p50 / 1000} µs ≥ ring p50 ${arrival.toRingUs.p50} µs`)
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'line A detached at exit')
})

t.test('without --xdp-arrival the end event has no arrival section; --busy-poll with --rerequest and --spin-us out of range are usage errors', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const arb = await startArbitrator(net, bed, [])
  arb.child.kill('SIGINT')
  await arb.exited
  t.equal(arb.events.find((e) => e.event === 'end')!.data['arrival'], undefined, 'no arrival section')
  for (const [args, message] of [
    [['--format', 'moldudp64', '--rerequest', '10.9.9.9:9000', '--busy-poll'], /--busy-poll: not with --rerequest/],
    [['--spin-us', '5000'], /--spin-us/],
  ] as const) {
    const [cmd, argv] = nodeCommand(AB_ARBITRATE, [bed.dstA.name, bed.dstB.name, ...args])
    const bad = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    t.same(await bad.exited, { code: 2, signal: null }, `${args.join(' ')}: exit 2`)
    t.match(bad.stderr(), message, `${args.join(' ')}: says why`)
    t.same(xdpAttachmentOf(bed.dstA.name).programs, [], `${args.join(' ')}: nothing attached`)
  }
})
