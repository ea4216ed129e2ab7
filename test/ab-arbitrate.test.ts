// ab-feed → two real veth lines → ab-arbitrate (XDP + AF_XDP), for a matrix of impairments: what is
// delivered equals the union of both lines exactly once, and the gap events equal the withheld set.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { xdpAttachmentOf } from '@kbx/bpf'
import { parseFrame, readPcap } from '@kbx/net'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import { AB_ARBITRATE, AB_FEED, abBed } from './testing/ab-bed.js'
import { decodePayload } from '@kbx/ab'

// several feeds of tens of seconds each: above tap's 120 s per file on a loaded machine
t.setTimeout(300_000)

const arbitrate = AB_ARBITRATE
const feed = AB_FEED

interface Case {
  name: string
  /** Line B's copies arrive after line A's (a positive median skew). */
  bLate?: boolean
  /** The winning line reorders: some holes are filled late, before the window passes them. */
  lateFills?: boolean
  /** Some gap spans several numbers (overlapping bursts). */
  multiGap?: boolean
  /** Both lines win numbers and each fills the other's losses. */
  bothWin?: boolean
  /** Line B is neither delayed nor early: the median A/B skew stays small. */
  zeroSkew?: boolean
  /** Every number is on one line only: no second copies, no skew samples. */
  oneCopyEach?: boolean
  queues?: number
  feedArgs: string[]
  arbArgs?: string[]
  count: number
  start?: bigint
}

const cases: Case[] = [
  { name: 'clean lines', feedArgs: [], count: 3000 },
  { name: 'loss on A only', feedArgs: ['--loss-a', '0.1', '--burst-a', '0.01:20'], count: 3000 },
  { name: 'loss on B only', feedArgs: ['--loss-b', '0.1'], count: 3000 },
  { name: 'alternating bursts: each line down in turn, the other fills', bothWin: true, oneCopyEach: true, feedArgs: ['--alternate', '50'], count: 3000 },
  { name: 'loss bursts on both lines: overlaps are multi-number gaps', multiGap: true, feedArgs: ['--burst-a', '0.02:30', '--burst-b', '0.02:30', '--seed', '5'], count: 4000 },
  { name: 'both lost: gaps equal the withheld set', feedArgs: ['--gap', '0.01', '--loss-a', '0.05', '--loss-b', '0.05', '--streams', '3'], count: 2000 },
  { name: 'reorder and duplicates on B, B delayed', bLate: true, feedArgs: ['--reorder-b', '0.1:16', '--dup-b', '0.05', '--delay-b', '200', '--gap', '0.005'], count: 3000 },
  { name: 'zero skew: no delay between the lines', zeroSkew: true, bothWin: true, feedArgs: ['--delay-b', '0', '--loss-a', '0.2', '--loss-b', '0.2', '--gap', '0.005'], count: 3000 },
  { name: 'reorder on the winning line: late fills are not gaps', lateFills: true, feedArgs: ['--reorder-a', '0.2:32', '--loss-b', '0.3', '--gap', '0.01'], count: 3000 },
  { name: 'two queues per line: one socket each, one UMEM', queues: 2, feedArgs: ['--gap', '0.01'], count: 2000 },
  { name: 'start near the u32 wrap', feedArgs: ['--start-seq', String(2 ** 32 - 1500), '--gap', '0.01'], count: 3000, start: BigInt(2 ** 32 - 1500) },
  { name: 'moldudp64 with gaps', feedArgs: ['--format', 'moldudp64', '--gap', '0.01', '--loss-a', '0.05'], arbArgs: ['--format', 'moldudp64'], count: 2000 },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const net = withTestNet(t)
    const bed = abBed(net, c.queues)
    const dir = mkdtempSync(join(tmpdir(), 'kbx-ab-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const pcapPath = join(dir, 'delivered.pcap')
    const [acmd, aargv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, '--interval', '0.2', '--pcap', pcapPath, ...(c.arbArgs ?? [])])
    const arb = followTool(net.spawn(null, acmd, aargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    await waitUntil('ab-arbitrate to start', () => arb.events.some((e) => e.event === 'start') || arb.child.exitCode !== null)
    t.ok(arb.events.some((e) => e.event === 'start'), `arbitrator started: ${arb.stderr()}`)
    const started = arb.events.find((e) => e.event === 'start')!.data
    t.equal(started['sockets'].length, 2 * (c.queues ?? 1), 'one AF_XDP socket per line queue')

    const [fcmd, fargv] = nodeCommand(feed, [bed.srcA.name, bed.srcB.name, '--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', String(c.count), '--seed', '42', '--rate', '5000', ...c.feedArgs])
    const fd = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
    const truth = fd.events.find((e) => e.event === 'end')!.data
    const streams = Number(fd.events.find((e) => e.event === 'start')!.data['streams'])
    const union = c.count * streams - truth['withheld'].count
    t.equal(truth['union'], union, 'the feeder reports the union it sent')
    await waitUntil('every packet of the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 30000).catch(() => {})
    arb.child.kill('SIGINT')
    t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
    const end = arb.events.find((e) => e.event === 'end')!.data

    t.equal(end['delivered'], union, 'delivered = the union of both lines')
    t.equal(end['duplicatesDelivered'], 0, 'no number delivered twice')
    t.equal(end['xsk'].rxDropped, 0, 'the AF_XDP sockets dropped nothing')
    // Every delivered frame, from the pcap: each (stream, sequence) exactly once.
    const format = c.arbArgs?.includes('moldudp64') ? 'moldudp64' : 'optiq'
    const seen = new Map<string, number>()
    for (const p of readPcap(pcapPath).packets) {
      const f = parseFrame(p.data)
      if (!f.ok) continue
      const d = decodePayload(format, p.data.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength))
      if (d.kind !== 'data') continue
      const key = `${d.stream}/${d.sequence}`
      seen.set(key, (seen.get(key) ?? 0) + 1)
    }
    t.equal(seen.size, union, 'the pcap holds the union')
    t.equal([...seen.values()].filter((n) => n > 1).length, 0, 'zero duplicates reached userspace')

    const gaps = arb.events.filter((e) => e.event === 'gap').map((e) => `${e.data['stream']}:${e.data['from']}-${e.data['to']}`).sort()
    const withheld = (truth['withheld'].ranges as { stream: string; from: number; to: number }[]).map((r) => `${r.stream}:${r.from}-${r.to}`).sort()
    t.same(gaps, withheld, 'gap events = the numbers withheld from both lines')
    t.equal(end['lost'], truth['withheld'].count, 'packets lost = withheld count')
    const won = end['lines'].A.won + end['lines'].B.won
    t.equal(won, union, 'XDP winners = union')
    t.equal(end['lines'].A.socketDropped + end['lines'].B.socketDropped, end['xsk'].rxDropped + end['xsk'].rxRingFull, "per-line socket drops add up to the sockets' drops")
    if (c.multiGap) t.ok(arb.events.some((e) => e.event === 'gap' && e.data['count'] > 1), 'a gap of several numbers is one event')
    if (c.lateFills) t.ok(end['lateFills'] > 0, `holes filled late: ${end['lateFills']}`)
    if (c.bLate) t.ok(end['skewUs'].p50Us > 0, `B arrives later: median skew ${end['skewUs'].p50Us} µs > 0`)
    if (c.zeroSkew) t.ok(Math.abs(end['skewUs'].p50Us) < 2000, `no delay: |median skew| ${end['skewUs'].p50Us} µs < 2 ms (B delayed by 200 packets at 5000 pps: 40 ms)`)
    if (c.bothWin) {
      t.ok(end['lines'].A.won > 0 && end['lines'].B.won > 0, `both lines won numbers: A ${end['lines'].A.won}, B ${end['lines'].B.won}`)
      t.ok(end['lines'].A.filledForB > 0 && end['lines'].B.filledForA > 0, 'each line filled losses of the other')
    }
    if (c.oneCopyEach) t.equal(end['skewUs'].samples, 0, 'no second copies, no skew samples')
    else t.ok(end['skewUs'].samples > 0, 'skew sampled from the second copies')
    t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'line A detached at exit')
    t.same(xdpAttachmentOf(bed.dstB.name).programs, [], 'line B detached at exit')
  })
}

t.test('ab-feed --duration: the truth of what it sent before it stopped equals what the arbitrator saw', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const [acmd, aargv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, '--interval', '0.2'])
  const arb = followTool(net.spawn(null, acmd, aargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('ab-arbitrate to start', () => arb.events.some((e) => e.event === 'start') || arb.child.exitCode !== null)
  const feedArgs = ['--count', '1000000', '--rate', '4000', '--duration', '1.5', '--seed', '9', '--gap', '0.01', '--loss-a', '0.05', '--burst-b', '0.01:10', '--streams', '2']
  const [fcmd, fargv] = nodeCommand(feed, [bed.srcA.name, bed.srcB.name, '--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, ...feedArgs])
  const fd = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  t.equal(truth['stoppedBy'], 'duration')
  t.equal(truth['complete'], false, 'stopped before the plan was sent')
  const union = truth['union'] as number
  t.ok(union > 1000 && union < 2_000_000, `sent part of the plan: ${union} numbers`)
  t.ok(truth['withheld'].count > 0, 'some numbers withheld from both lines')
  t.ok(truth['lines'].A.sent > 0 && truth['lines'].A.sent < truth['lines'].A.planned, 'line A: sent < planned')
  await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 10000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data
  t.equal(end['delivered'], union, 'delivered = the union the feeder reports')
  t.equal(end['lines'].A.won + end['lines'].A.duplicatesDropped + end['lines'].A.stale, truth['lines'].A.sent, 'every frame sent on A was arbitrated')
  t.equal(end['lines'].B.won + end['lines'].B.duplicatesDropped + end['lines'].B.stale, truth['lines'].B.sent, 'every frame sent on B was arbitrated')
  const gaps = arb.events.filter((e) => e.event === 'gap').map((e) => `${e.data['stream']}:${e.data['from']}-${e.data['to']}`).sort()
  const withheld = (truth['withheld'].ranges as { stream: string; from: number; to: number }[]).map((r) => `${r.stream}:${r.from}-${r.to}`).sort()
  t.same(gaps, withheld, 'gap events = the withheld numbers below the last one sent')
})

t.test('more streams than the stream table holds: counted, warned about, the rest arbitrated', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const [acmd, aargv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, '--interval', '0.2'])
  const arb = followTool(net.spawn(null, acmd, aargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('ab-arbitrate to start', () => arb.events.some((e) => e.event === 'start') || arb.child.exitCode !== null)
  const table = 1024 // AB_MAX_STREAMS
  const streams = table + 6
  const perStream = 3
  const [fcmd, fargv] = nodeCommand(feed, [bed.srcA.name, bed.srcB.name, '--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', String(perStream), '--streams', String(streams), '--rate', '5000'])
  const fd = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  await waitUntil('the tracked streams to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= table * perStream), 10000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data
  t.equal(end['streams'], table, 'the table is full')
  t.equal(end['delivered'], table * perStream, 'the streams in the table are delivered')
  t.equal(end['streamTableFull'], (streams - table) * perStream * 2, 'every copy of the streams beyond it is counted')
  t.equal(end['duplicatesDelivered'], 0)
  t.match(arb.stderr(), /more streams than the stream table holds \(1024\)/, 'and warned about')
})

function pcapSequences(path: string): Map<string, number> {
  const seen = new Map<string, number>()
  for (const p of readPcap(path).packets) {
    const f = parseFrame(p.data)
    if (!f.ok) continue
    const d = decodePayload('optiq', p.data.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength))
    if (d.kind === 'data') seen.set(`${d.stream}/${d.sequence}`, (seen.get(`${d.stream}/${d.sequence}`) ?? 0) + 1)
  }
  return seen
}

t.test('restart of ab-arbitrate mid-feed: the new one arbitrates from where it joins, no duplicates', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-ab-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const start = (pcap: string) => {
    const [cmd, argv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, '--interval', '0.2', '--pcap', pcap])
    return followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  }
  const first = start(join(dir, 'first.pcap'))
  await waitUntil('the first arbitrator to start', () => first.events.some((e) => e.event === 'start'))
  const count = 1_000_000
  const [fcmd, fargv] = nodeCommand(feed, [bed.srcA.name, bed.srcB.name, '--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', String(count), '--rate', '4000'])
  const fd = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('the first arbitrator to deliver', () => first.events.some((e) => e.event === 'interval' && e.data['delivered'] >= 1000))
  first.child.kill('SIGINT')
  t.same(await first.exited, { code: 0, signal: null }, first.stderr())
  const second = start(join(dir, 'second.pcap'))
  await waitUntil('the second arbitrator to start', () => second.events.some((e) => e.event === 'start') || second.child.exitCode !== null)
  await waitUntil('the second arbitrator to deliver', () => second.events.some((e) => e.event === 'interval' && e.data['delivered'] >= 1000))
  fd.child.kill('SIGINT')
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  await new Promise((r) => setTimeout(r, 500))
  second.child.kill('SIGINT')
  t.same(await second.exited, { code: 0, signal: null }, second.stderr())
  const one = pcapSequences(join(dir, 'first.pcap'))
  const two = pcapSequences(join(dir, 'second.pcap'))
  t.equal([...one.values()].filter((n) => n > 1).length, 0, 'first run: no duplicates')
  t.equal([...two.values()].filter((n) => n > 1).length, 0, 'second run: no duplicates')
  const highest = (m: Map<string, number>) => Math.max(...[...m.keys()].map((k) => Number(k.split('/')[1])))
  const lowest = (m: Map<string, number>) => Math.min(...[...m.keys()].map((k) => Number(k.split('/')[1])))
  t.ok(one.size >= 1000 && two.size >= 1000, 'both runs delivered')
  t.ok(lowest(two) > highest(one), 'the second run picks up after the first one stopped')
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'nothing attached')
})

t.test('SIGKILL: the kernel detaches the program from both lines (bpf_link)', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const [cmd, argv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name])
  const arb = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('the arbitrator to start', () => arb.events.some((e) => e.event === 'start'))
  t.equal(xdpAttachmentOf(bed.dstA.name).programs.length, 1, 'attached to A while running')
  t.equal(xdpAttachmentOf(bed.dstB.name).programs.length, 1, 'attached to B while running')
  arb.child.kill('SIGKILL')
  await arb.exited
  await waitUntil('the kernel to release the links', () => xdpAttachmentOf(bed.dstA.name).programs.length + xdpAttachmentOf(bed.dstB.name).programs.length === 0, 5000)
  t.pass('nothing attached after SIGKILL')
})

t.test('--pin: the maps stay pinned after exit, the programs do not stay attached', async (t) => {
  const { existsSync, readdirSync, rmdirSync } = await import('node:fs')
  const { BpfMap } = await import('@kbx/bpf')
  const { abPinDirectory } = await import('@kbx/ab')
  const net = withTestNet(t)
  const bed = abBed(net)
  const run = `test-${process.pid}-${Date.now()}`
  const dir = abPinDirectory(run)
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true })
    for (const parent of ['/sys/fs/bpf/kbx/ab', '/sys/fs/bpf/kbx']) {
      try {
        rmdirSync(parent) // only when empty: other runs' pins stay
      } catch {
        break
      }
    }
  })
  const [cmd, argv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, '--pin', run, '--interval', '0.2'])
  const arb = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('the arbitrator to start', () => arb.events.some((e) => e.event === 'start') || arb.child.exitCode !== null)
  t.ok(arb.events.some((e) => e.event === 'start'), `arbitrator started: ${arb.stderr()}`)
  const start = arb.events.find((e) => e.event === 'start')?.data
  const [fcmd, fargv] = nodeCommand(feed, [bed.srcA.name, bed.srcB.name, '--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', '500', '--rate', '5000'])
  const fed = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.equal((await fed.exited).code, 0, fed.stderr())
  await waitUntil('the feed to be delivered', () => arb.events.some((e) => e.event === 'interval' && Number(e.data.delivered) >= 500), 10000)
  arb.child.kill('SIGINT')
  t.equal((await arb.exited).code, 0, arb.stderr())
  t.equal(xdpAttachmentOf(bed.dstA.name).programs.length, 0, 'nothing attached to A after exit')
  t.equal(xdpAttachmentOf(bed.dstB.name).programs.length, 0, 'nothing attached to B after exit')
  t.ok(existsSync(dir), `${dir} exists after exit`)
  const pinned = readdirSync(dir)
  t.same([...((start?.pinnedMaps as string[] | undefined) ?? [])].sort(), pinned.map((n) => `${dir}/${n}`).sort(), 'the start event lists the pins')
  t.ok(pinned.includes('stats'), 'the stats map is pinned')
  const stats = BpfMap.fromPin(`${dir}/stats`)
  t.ok((stats.lookupPerCpu(Buffer.alloc(4))?.length ?? 0) > 0, 'the pinned stats map is readable after the run')
  stats.close()
})

t.test('without --pin nothing is pinned', async (t) => {
  const { existsSync, readdirSync } = await import('node:fs')
  const net = withTestNet(t)
  const bed = abBed(net)
  const before = existsSync('/sys/fs/bpf/kbx/ab') ? readdirSync('/sys/fs/bpf/kbx/ab') : []
  const [cmd, argv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name])
  const arb = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('the arbitrator to start', () => arb.events.some((e) => e.event === 'start'))
  t.equal(arb.events.find((e) => e.event === 'start')?.data.pinnedMaps, undefined)
  arb.child.kill('SIGINT')
  t.equal((await arb.exited).code, 0, arb.stderr())
  const after = existsSync('/sys/fs/bpf/kbx/ab') ? readdirSync('/sys/fs/bpf/kbx/ab') : []
  t.same(after, before, 'no new pin directory')
})
