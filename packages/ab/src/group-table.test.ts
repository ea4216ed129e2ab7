// ab_arbitrate.bpf.c with multicast channels, through BPF_PROG_TEST_RUN: exactly the group table's
// (interface, group, port[, source]) are arbitrated, with the entry's line; everything else passes;
// each channel counts its own packets.
import t from 'tap'
import { runFixtures } from '@kbx/bpf/testing'
import type { XdpFixture } from '@kbx/bpf/testing'
import { buildUdpFrame, multicastMac, parseIPv4 } from '@kbx/net'
import { withTestNet } from '@kbx/testbed'
import { parseGroupSpec, type Channel } from './channels.js'
import { encodeFeedPayload } from './format.js'
import { groupTableEntries, readChannelCounters } from './group-table.js'
import { loadArbitratorProgram } from './program.js'

function frame(src: string, group: string, port: number, sequence: bigint, stream = 0): Buffer {
  return buildUdpFrame({ srcMac: '02:00:00:00:00:01', dstMac: multicastMac(parseIPv4(group)), srcIp: src, dstIp: group, srcPort: 40000, dstPort: port, payload: encodeFeedPayload('optiq', stream, sequence) })
}

t.test('the group table steers its groups on their lines, and nothing else', async (t) => {
  const net = withTestNet(t)
  const { a: ifA } = net.addVethPair()
  const { a: ifB } = net.addVethPair()
  const g = (s: string) => parseGroupSpec(s, 'x')
  const channels: Channel[] = [
    { name: 'asm', a: g('233.54.12.1:15001'), b: g('233.54.12.2:15001') },
    { name: 'ssm', a: g('232.1.1.1:15002@10.9.9.9'), b: g('232.1.1.1:15002@10.9.9.10') },
  ]
  const obj = loadArbitratorProgram({
    format: 'optiq',
    portMin: 15001,
    portMax: 15002,
    // line B by its interface would make every B frame B; the table's line must decide (it agrees here)
    lineBIfindex: ifB.ifindex,
    window: 64,
    skewSample: 1,
    groupTable: { channels: channels.length, entries: groupTableEntries(channels, ifA.ifindex, ifB.ifindex) },
  })
  t.teardown(() => obj.close())
  const A = { ingressIfindex: ifA.ifindex }
  const B = { ingressIfindex: ifB.ifindex }
  const fixtures: XdpFixture[] = [
    { name: 'asm: A group on line A wins', data: frame('10.0.1.1', '233.54.12.1', 15001, 1n), ctx: A, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'asm: B group on line B is the duplicate', data: frame('10.0.2.1', '233.54.12.2', 15001, 1n), ctx: B, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: "asm: A's group arriving on line B is not a channel's", data: frame('10.0.2.1', '233.54.12.1', 15001, 2n), ctx: B, verdict: 'pass', counters: { passed: 1n } },
    { name: 'asm: the right group on another port passes', data: frame('10.0.1.1', '233.54.12.1', 15002, 2n), ctx: A, verdict: 'pass', counters: { passed: 1n } },
    { name: 'a unicast frame in the port range passes (no port matching with channels)', data: buildUdpFrame({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.1.1', dstIp: '10.0.1.2', srcPort: 40000, dstPort: 15001, payload: encodeFeedPayload('optiq', 0, 3n) }), ctx: A, verdict: 'pass', counters: { passed: 1n } },
    { name: 'ssm: from the joined source on A wins', data: frame('10.9.9.9', '232.1.1.1', 15002, 10n, 1), ctx: A, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: 'ssm: the same group from another source passes', data: frame('10.9.9.10', '232.1.1.1', 15002, 11n, 1), ctx: A, verdict: 'pass', counters: { passed: 1n } },
    { name: "ssm: line B's source on line B is B's copy", data: frame('10.9.9.10', '232.1.1.1', 15002, 10n, 1), ctx: B, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: 'ssm: line B wins 11', data: frame('10.9.9.10', '232.1.1.1', 15002, 11n, 1), ctx: B, verdict: 'pass', counters: { won_b: 1n, won_nosocket: 1n } },
  ]
  runFixtures(t, obj.program(), fixtures, { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
  const [asm, ssm] = readChannelCounters(obj, 2)
  t.same({ rx: asm!.rx, won_a: asm!.won_a, dup_b: asm!.dup_b, won_b: asm!.won_b }, { rx: 2n, won_a: 1n, dup_b: 1n, won_b: 0n }, 'asm: its own two packets')
  t.same({ rx: ssm!.rx, won_a: ssm!.won_a, won_b: ssm!.won_b, dup_b: ssm!.dup_b, won_nosocket: ssm!.won_nosocket }, { rx: 3n, won_a: 1n, won_b: 1n, dup_b: 1n, won_nosocket: 2n }, 'ssm: its own three packets')
})

t.test("both groups on one interface: the table's line decides, not the interface", async (t) => {
  const net = withTestNet(t)
  const { a: nic } = net.addVethPair()
  const channels: Channel[] = [{ name: 'one-nic', a: parseGroupSpec('233.54.12.1:15001', 'x'), b: parseGroupSpec('233.54.12.2:15001', 'x') }]
  const obj = loadArbitratorProgram({ format: 'optiq', portMin: 15001, portMax: 15001, lineBIfindex: nic.ifindex, window: 64, skewSample: 1, groupTable: { channels: 1, entries: groupTableEntries(channels, nic.ifindex, nic.ifindex) } })
  t.teardown(() => obj.close())
  const ctx = { ingressIfindex: nic.ifindex }
  runFixtures(t, obj.program(), [
    { name: "A's group is line A", data: frame('10.0.1.1', '233.54.12.1', 15001, 1n), ctx, verdict: 'pass', counters: { new_streams: 1n, won_a: 1n, won_nosocket: 1n } },
    { name: "B's group is line B", data: frame('10.0.1.1', '233.54.12.2', 15001, 1n), ctx, verdict: 'drop', counters: { dup_b_after_a: 1n, skew_samples: 1n } },
    { name: "B's group wins 2 for line B", data: frame('10.0.1.1', '233.54.12.2', 15001, 2n), ctx, verdict: 'pass', counters: { won_b: 1n, won_nosocket: 1n } },
  ], { stats: obj.map('stats'), everyRun: () => ({ rx: 1n }) })
})
