// ab-arbitrate --out: ab-feed → two real veth lines → ab-arbitrate (XDP + AF_XDP) → udp consumers in another
// namespace (unicast and a multicast group) and shm readers (the C example, a TS reader that keeps up and
// one that is deliberately slow). Every consumer gets the union of both lines exactly once.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { xdpAttachmentOf } from '@kbx/bpf'
import { repoRoot } from '@kbx/ffi'
import { readPcap } from '@kbx/net'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'
import { AB_ARBITRATE, abBed, runFeedOnBed, startArbitrator, type AbBed } from './testing/ab-bed.js'

t.setTimeout(240_000)

const UDP_CONSUMER = join(repoRoot, 'test/ab-udp-consumer.ts')
const TS_SHM_CONSUMER = join(repoRoot, 'examples/ab-shm-consumer.ts')
const C_SHM_CONSUMER = join(repoRoot, 'native/build/ab-shm-consumer')

async function started(run: ToolRun, what: string): Promise<ToolRun> {
  await waitUntil(`${what} to start`, () => run.events.some((e) => e.event === 'start') || run.child.exitCode !== null)
  if (!run.events.some((e) => e.event === 'start')) throw new Error(`${what} did not start: ${run.stderr()}`)
  return run
}

/** The feed, then ab-arbitrate stopped once it delivered the union: the feeder's truth and ab-arbitrate's end event. */
async function feedAndStop(t: Test, net: TestNet, bed: AbBed, arb: ToolRun, feedArgs: string[]) {
  const fd = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--seed', '11', '--rate', '5000', ...feedArgs])
  t.equal(fd.child.exitCode, 0, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  const union = truth['union'] as number
  await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 30000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data
  t.equal(end['delivered'], union, 'delivered = the union of both lines')
  const withheld = new Set<string>()
  for (const r of truth['withheld'].ranges as { stream: string; from: number; to: number }[]) for (let n = r.from; n <= r.to; n++) withheld.add(`${r.stream}/${n}`)
  t.ok(withheld.size > 0, `the feed withheld numbers from both lines: ${withheld.size}`)
  return { truth, union, end, withheld }
}

function exactlyOnce(t: Test, what: string, keys: string[], union: number, withheld: Set<string>) {
  const counts = new Map<string, number>()
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1)
  t.equal(counts.size, union, `${what}: every number of the union (${counts.size} of ${union})`)
  t.equal([...counts.values()].filter((n) => n > 1).length, 0, `${what}: none twice`)
  t.equal([...counts.keys()].filter((k) => withheld.has(k)).length, 0, `${what}: nothing withheld from both lines`)
}

t.test('udp outputs: a unicast and a multicast consumer each get the union exactly once, under loss and reorder', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const consumers = net.addLinkedNamespace()
  const group = '239.7.7.7'
  const spawnConsumer = (args: string[]) => {
    const [cmd, argv] = nodeCommand(UDP_CONSUMER, args)
    return followTool(net.spawn(consumers.netns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  }
  const unicast = await started(spawnConsumer(['optiq', '9000']), 'the unicast consumer')
  const multicast = await started(spawnConsumer(['optiq', '9001', group, consumers.remote.ip!]), 'the multicast consumer')
  const arb = await startArbitrator(net, bed, ['--out', `udp:${consumers.remote.ip}:9000`, '--out', `udp:${group}:9001`, '--out-iface', consumers.local.name])
  const start = arb.events.find((e) => e.event === 'start')!.data
  t.same(start['outputs'], [`udp:${consumers.remote.ip}:9000`, `udp:${group}:9001`], 'the start event names the outputs')
  const feed = ['--count', '2500', '--streams', '2', '--loss-a', '0.1', '--loss-b', '0.1', '--reorder-a', '0.1:16', '--reorder-b', '0.1:16', '--gap', '0.01']
  const { union, end, withheld } = await feedAndStop(t, net, bed, arb, feed)
  t.ok(end['lateFills'] > 0, `reorder filled holes late: ${end['lateFills']}`)
  for (const [i, out] of (end['outputs'] as { out: string; messages: number; errors: number; sendCalls: number }[]).entries()) {
    t.equal(out.out, start['outputs'][i], `output ${i} in the end event`)
    t.equal(out.messages, union, `${out.out}: the union written`)
    t.equal(out.errors, 0, `${out.out}: no send errors`)
    t.ok(out.sendCalls > 0 && out.sendCalls < union, `${out.out}: batched (${out.sendCalls} sendmmsg calls for ${union} datagrams)`)
  }
  t.ok(arb.events.some((e) => e.event === 'interval' && e.data['outputs']?.[0]?.messages > 0), 'interval events carry the output counters')
  // What is in flight on the veth arrives within moments; then the consumers report.
  await new Promise((r) => setTimeout(r, 500))
  for (const [what, run] of [['unicast', unicast], ['multicast', multicast]] as const) {
    run.child.kill('SIGTERM')
    await run.exited
    const data = run.events.find((e) => e.event === 'end')?.data ?? {}
    t.ok(data['keys'], `${what} consumer reported: ${run.stderr()}`)
    t.equal(data['undecodable'], 0, `${what}: every datagram is a feed payload`)
    exactlyOnce(t, what, data['keys'], union, withheld)
  }
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'line A detached at exit')
})

t.test('shm output: the C consumer and a fast reader see everything in order; a slow reader is told what it lost, then reads consistent data', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const name = `kbx-test-ab-${process.pid}`
  const slots = 2048
  const dir = mkdtempSync(join(tmpdir(), 'kbx-ab-out-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pcap = join(dir, 'delivered.pcap')
  const arb = await startArbitrator(net, bed, ['--out', `shm:${name},slots=${slots},slot-size=128`, '--out', `pcap:${pcap}`])
  const tsReader = (args: string[]) => {
    const [cmd, argv] = nodeCommand(TS_SHM_CONSUMER, [name, ...args])
    return followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  }
  const fast = await started(tsReader([]), 'the fast reader')
  const slow = await started(tsReader(['--batch', '16', '--delay-ms', '100', '--quiet']), 'the slow reader')
  const c = followTool(net.spawn(null, C_SHM_CONSUMER, [name, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] }))
  await new Promise((r) => setTimeout(r, 200)) // the C consumer has no start event: it maps the ring at once
  const feed = ['--count', '4000', '--streams', '2', '--loss-a', '0.1', '--loss-b', '0.1', '--gap', '0.01']
  const { union, end, withheld } = await feedAndStop(t, net, bed, arb, feed)
  t.ok(union > slots * 2, `more messages (${union}) than the ring holds (${slots}) twice over`)
  const [shm, pcapOut] = end['outputs'] as { out: string; messages: number; bytes: number; errors: number; head: number }[]
  t.same(shm, { out: `shm:${name}`, messages: union, bytes: shm!.bytes, errors: 0, head: union }, 'the ring took the union; its head in the end event')
  t.same([pcapOut!.out, pcapOut!.messages], [`pcap:${pcap}`, union], '--out pcap: the union written')
  t.equal(readPcap(pcap).packets.length, union, 'the pcap holds the union')
  t.equal(existsSync(`/dev/shm/${name}`), false, 'the ring file is removed at exit')
  for (const run of [fast, slow, c]) await run.exited

  const fastEnd = fast.events.find((e) => e.event === 'end')!.data
  const fastMessages = (fast.events as unknown as Record<string, unknown>[]).filter((e) => e['index'] !== undefined) as unknown as { index: string; stream: string; sequence: string; line: string; consistent: boolean }[]
  t.same([fastEnd['received'], fastEnd['lost'], fastEnd['inconsistent'], fastEnd['outOfOrder']], [union, '0', 0, 0], 'fast reader: all, none lost, all consistent')
  t.same(fastMessages.map((m) => Number(m.index)), Array.from({ length: union }, (_, i) => i), 'fast reader: in ring order, no index skipped')
  exactlyOnce(t, 'fast reader', fastMessages.map((m) => `${m.stream}/${m.sequence}`), union, withheld)
  t.ok(fastMessages.some((m) => m.line === 'A') && fastMessages.some((m) => m.line === 'B'), 'both lines won messages')

  const slowEnd = slow.events.find((e) => e.event === 'end')!.data
  t.ok(Number(slowEnd['lost']) > 0, `slow reader: overrun, ${slowEnd['lost']} lost, counted`)
  t.equal(slowEnd['received'] + Number(slowEnd['lost']), union, 'slow reader: read + lost = everything written')
  t.same([slowEnd['inconsistent'], slowEnd['outOfOrder']], [0, 0], 'slow reader: every message it read is whole and in order')
  t.ok(slowEnd['received'] >= slots, `slow reader: read the tail the ring still held (${slowEnd['received']})`)

  const cEnd = c.events.find((e) => e.event === 'end')?.data
  t.same(cEnd, { received: union, lost: 0 }, `the C consumer read everything: ${c.stderr()}`)
})

t.test('bad --out: exit 2 before anything is attached', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  for (const [args, message] of [
    [['--out', 'tcp:10.0.0.1:9000'], /unknown output kind "tcp"/],
    [['--out', 'udp:10.0.0.1'], /udp takes IPv4:PORT/],
    [['--out', 'shm:a/b'], /a ring name is/],
    [['--out', 'shm:x,slots=1000'], /slots is a power of two/],
    [['--out', 'udp:239.1.1.1:9000'], /needs --out-iface/],
    [['--out', 'udp:10.0.0.1:9000', '--out-iface', 'lo'], /--out-iface applies to multicast udp outputs only/],
    [['--out', 'pcap:/tmp/a.pcap', '--pcap', '/tmp/b.pcap'], /one pcap per run/],
  ] as const) {
    const [cmd, argv] = nodeCommand(AB_ARBITRATE, [bed.dstA.name, bed.dstB.name, ...args])
    const run = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    t.same(await run.exited, { code: 2, signal: null }, `${args.join(' ')}: exit 2`)
    t.match(run.stderr(), message, `${args.join(' ')}: says why`)
    t.same(xdpAttachmentOf(bed.dstA.name).programs, [], `${args.join(' ')}: nothing attached`)
  }
})
