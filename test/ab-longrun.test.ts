// Long-run realities of ab-feed → two real veth lines → ab-arbitrate: sequence numbers wrapping (optiq's
// u32, MoldUDP64 to 2^64 − 1 and past it), feeds restarting mid-run (optiq numbering, MoldUDP64 sessions),
// the stream table's size (--max-streams) and the limits checked before anything is attached.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { xdpAttachmentOf } from '@kbx/bpf'
import { repoRoot } from '@kbx/ffi'
import { parseFrame, readPcap } from '@kbx/net'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'
import { decodePayload, type FeedFormat } from '@kbx/ab'

// several feeds of tens of seconds each: above tap's 120 s per file on a loaded machine
t.setTimeout(300_000)

const arbitrate = join(repoRoot, 'packages/ab/src/bin-ab-arbitrate.ts')
const feed = join(repoRoot, 'packages/ab/src/bin-ab-feed.ts')
const M64 = 1n << 64n

function abBed(net: TestNet) {
  const ns = net.addNamespace()
  const a = net.addVethPair({ b: { netns: ns } })
  const b = net.addVethPair({ b: { netns: ns } })
  return { ns, dstA: a.a, srcA: a.b, dstB: b.a, srcB: b.b }
}

type Event = { event: string; data: Record<string, any> }

/** JSON lines with every integer of 16 digits or more kept exact (as a decimal string). */
function exactEvents(run: ToolRun): () => Event[] {
  let text = ''
  run.child.stdout!.on('data', (chunk: string) => (text += chunk))
  return () =>
    text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l.replace(/([:[,])(-?\d{16,})(?=[,\]}])/g, '$1"$2"')) as Event)
}

const big = (v: unknown) => BigInt(v as string | number)

interface LongCase {
  name: string
  format: FeedFormat
  count: number
  feedArgs: string[]
  arbArgs?: string[]
  /** Restarts the arbitrator must report (events and counter). */
  restarts?: number
  /** The highest raw number the feed sends. */
  last?: bigint
}

const impaired = ['--loss-a', '0.05', '--loss-b', '0.05', '--gap', '0.01', '--reorder-b', '0.05:8', '--delay-b', '20']
const cases: LongCase[] = [
  { name: 'optiq across the u32 wrap, loss on both lines, withheld numbers', format: 'optiq', count: 4000, feedArgs: ['--start-seq', String(2 ** 32 - 2000), ...impaired] },
  { name: 'MoldUDP64 up to 2^64 − 1 exactly', format: 'moldudp64', count: 3000, feedArgs: ['--start-seq', String(M64 - 3000n), ...impaired], last: M64 - 1n },
  { name: 'MoldUDP64 past 2^64 − 1: 0 follows it, no restart', format: 'moldudp64', count: 3000, feedArgs: ['--start-seq', String(M64 - 1500n), ...impaired], restarts: 0 },
  {
    name: 'optiq feed restarting twice mid-run (5000000.. then 1.. twice)',
    format: 'optiq',
    count: 6000,
    feedArgs: ['--start-seq', '5000000', '--restart-every', '2000', '--restart-seq', '1', ...impaired],
    arbArgs: ['--window', '256', '--reset-distance', '1024'],
    restarts: 2,
  },
  { name: 'MoldUDP64 feed restarting twice mid-run: new sessions', format: 'moldudp64', count: 6000, feedArgs: ['--restart-every', '2000', ...impaired], restarts: 2 },
  {
    name: 'a run planned in chunks (as a long one is): the truth adds up across chunk boundaries and restarts',
    format: 'moldudp64',
    count: 5000,
    feedArgs: ['--plan-chunk', '1400', '--streams', '2', '--restart-every', '1800', '--burst-a', '0.01:5', '--burst-b', '0.01:5', ...impaired],
    // Six sessions through a table of four: closed sessions leave both tables.
    arbArgs: ['--max-streams', '4'],
    restarts: 4,
  },
  {
    name: 'a feed without end (--count 0), stopped by --duration mid-chunk: the truth of what it sent',
    format: 'optiq',
    count: 0,
    feedArgs: ['--duration', '2.5', '--plan-chunk', '1400', '--streams', '2', '--burst-a', '0.01:5', ...impaired],
  },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const net = withTestNet(t)
    const bed = abBed(net)
    const dir = mkdtempSync(join(tmpdir(), 'kbx-ab-long-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const pcapPath = join(dir, 'delivered.pcap')
    const [acmd, aargv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, '--format', c.format, '--interval', '0.2', '--pcap', pcapPath, ...(c.arbArgs ?? [])])
    const arb = followTool(net.spawn(null, acmd, aargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    const arbEvents = exactEvents(arb)
    await waitUntil('ab-arbitrate to start', () => arb.events.some((e) => e.event === 'start') || arb.child.exitCode !== null)
    t.ok(arb.events.some((e) => e.event === 'start'), `arbitrator started: ${arb.stderr()}`)
    const feedArgs = [bed.srcA.name, bed.srcB.name, '--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--format', c.format, '--count', String(c.count), '--seed', '11', '--rate', '5000', ...c.feedArgs]
    const [fcmd, fargv] = nodeCommand(feed, feedArgs)
    const fd = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    const feedEvents = exactEvents(fd)
    t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
    const truth = feedEvents().find((e) => e.event === 'end')!.data
    const chunks = feedEvents().find((e) => e.event === 'start')!.data['chunks']
    if (c.count === 0) {
      t.equal(chunks, 'unbounded', 'a run without end, planned chunk by chunk')
      t.same([truth['stoppedBy'], truth['complete']], ['duration', false], 'stopped by --duration')
      t.ok(Number(truth['union']) > 3 * 1400, `past several chunks: ${truth['union']} numbers`)
    } else if (c.feedArgs.includes('--plan-chunk')) t.ok(chunks >= 3, 'the run was planned in several chunks')
    const union = Number(truth['union'])
    await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 30000).catch(() => {})
    arb.child.kill('SIGINT')
    t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
    const events = arbEvents()
    const end = events.find((e) => e.event === 'end')!.data

    t.equal(Number(end['delivered']), union, 'delivered = the union of both lines')
    t.equal(Number(end['lines'].A.won) + Number(end['lines'].B.won), union, 'XDP winners = the union')
    t.equal(Number(end['duplicatesDelivered']), 0, 'no number delivered twice')
    t.equal(Number(end['afterGap']), 0, 'no number arrived after its hole was reported')
    t.equal(Number(end['stale']), 0, 'no copy came too late to arbitrate')
    const gaps = events.filter((e) => e.event === 'gap').map((e) => `${e.data['stream']}:${e.data['from']}-${e.data['to']}`).sort()
    const withheld = (truth['withheld'].ranges as { stream: string; from: unknown; to: unknown }[]).map((r) => `${r.stream}:${big(r.from)}-${big(r.to)}`).sort()
    t.ok(withheld.length > 0, `numbers were withheld from both lines: ${withheld.length} ranges`)
    t.same(gaps, withheld, 'gap events = the numbers withheld from both lines')
    t.equal(Number(end['lost']), Number(truth['withheld'].count), 'lost = withheld count: not billions')
    for (const line of ['A', 'B'] as const) {
      const arbitrated = Number(end['lines'][line].won) + Number(end['lines'][line].duplicatesDropped) + Number(end['lines'][line].stale)
      t.equal(arbitrated, Number(truth['lines'][line].sent) - Number(truth['lines'][line].endOfSession), `every data frame sent on ${line} was arbitrated`)
    }
    t.equal(Number(end['xdp'].endOfSession), Number(truth['lines'].A.endOfSession) + Number(truth['lines'].B.endOfSession), 'every end-of-session copy was seen')

    // Every delivered frame, from the pcap: a (session, number) at most once per time the feed sent it.
    const sent = new Map<string, number>()
    for (const p of readPcap(pcapPath).packets) {
      const f = parseFrame(p.data)
      if (!f.ok) continue
      const d = decodePayload(c.format, p.data.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength))
      if (d.kind !== 'data') continue
      sent.set(`${d.stream}/${d.sequence}`, (sent.get(`${d.stream}/${d.sequence}`) ?? 0) + 1)
    }
    const total = [...sent.values()].reduce((n, x) => n + x, 0)
    t.equal(total, union, 'the pcap holds the union')
    const sessions = c.format === 'optiq' && c.restarts ? c.restarts : 1 // optiq sessions 2 and 3 reuse 1..2000
    t.equal([...sent.values()].filter((n) => n > sessions).length, 0, 'no number delivered more often than it was sent in different sessions')
    if (c.last !== undefined) t.ok(sent.has(`${c.format === 'optiq' ? '1000' : 'S000000000'}/${c.last}`), `the last number ${c.last} was delivered`)

    const restarts = events.filter((e) => e.event === 'restart')
    const expected = c.restarts ?? 0
    t.equal(Number(truth['restarts']), expected, `the feeder restarted ${expected} times`)
    t.equal(restarts.length, expected, `${expected} restart events`)
    t.equal(Number(end['restarts']), expected, 'and the restarts counter')
    if (c.format === 'moldudp64' && expected > 0) {
      t.same(restarts.map((e) => e.data['kind']), Array(expected).fill('session'), 'each a new session following the ended one')
      const previous = restarts.map((e) => e.data['previous'] as string)
      t.same(previous.filter((p) => p.endsWith('00000')), ['S000000000', 'R000100000'], 'naming the session it follows')
      t.equal(Number(end['sessionsEnded']), expected, 'sessions ended')
      t.equal(Number(end['sessionsClosed']), expected, 'and closed: the end came on both lines')
      t.equal(Number(end['streamTableFull']) + Number(end['untracked']), 0, 'no table ever full')
    }
    if (c.format === 'optiq' && expected > 0) {
      t.same(restarts.map((e) => [e.data['kind'], Number(e.data['firstAfter'])]), Array(expected).fill(['sequence', 1]), 'each a sequence restart to 1')
      t.ok(Number(end['lateOldEpoch']) > 0, `late copies of the old numbering (line B lags) still arbitrated: ${end['lateOldEpoch']}`)
    }
    t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'line A detached at exit')
  })
}

t.test('--max-streams: the table holds that many, the rest are counted and warned about', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const [acmd, aargv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, '--interval', '0.2', '--max-streams', '8'])
  const arb = followTool(net.spawn(null, acmd, aargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  await waitUntil('ab-arbitrate to start', () => arb.events.some((e) => e.event === 'start') || arb.child.exitCode !== null)
  t.equal(arb.events.find((e) => e.event === 'start')?.data['maxStreams'], 8, 'the start event names the table size')
  const [fcmd, fargv] = nodeCommand(feed, [bed.srcA.name, bed.srcB.name, '--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', '5', '--streams', '11', '--rate', '5000'])
  const fd = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  await waitUntil('the tracked streams to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= 40), 10000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  const end = arb.events.find((e) => e.event === 'end')!.data
  t.equal(end['streams'], 8, 'eight streams tracked')
  t.equal(end['delivered'], 8 * 5, 'their numbers delivered')
  t.equal(end['streamTableFull'], 3 * 5 * 2, 'every copy of the three streams beyond the table counted')
  t.match(arb.stderr(), /more streams than the stream table holds \(8\)/, 'and warned about')
})

t.test('limits are usage errors (exit 2) before anything is attached', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const refused: [string[], RegExp][] = [
    [['--window', '32'], /--window must be a power of two from 64 to 4096, not 32/],
    [['--window', '8192'], /--window must be a power of two from 64 to 4096/],
    [['--max-streams', '0'], /--max-streams must be from 1 to 65536, not 0/],
    [['--max-streams', '65537'], /--max-streams must be from 1 to 65536/],
    [['--window', '4096', '--reset-distance', '4096'], /--reset-distance must be from 2 × window \(8192\)/],
    [['--reset-distance', String(2 ** 31 + 1)], /--reset-distance must be from/],
  ]
  for (const [args, message] of refused) {
    const [cmd, argv] = nodeCommand(arbitrate, [bed.dstA.name, bed.dstB.name, ...args])
    const run = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    t.same(await run.exited, { code: 2, signal: null }, `${args.join(' ')}: exit 2`)
    t.match(run.stderr(), message, `${args.join(' ')}: says why`)
    t.notOk(run.events.some((e) => e.event === 'start'), `${args.join(' ')}: never started`)
    t.same([xdpAttachmentOf(bed.dstA.name).programs, xdpAttachmentOf(bed.dstB.name).programs], [[], []], `${args.join(' ')}: nothing attached`)
  }
  const feedRefused: [string[], RegExp][] = [
    [['--start-seq', String(2 ** 32)], /--start-seq must be an integer from 0 to 2\^32 − 1 for optiq/],
    [['--format', 'moldudp64', '--start-seq', String(M64)], /--start-seq must be an integer from 0 to 2\^64 − 1 for moldudp64/],
    [['--restart-seq', '-1'], /--restart-seq must be an integer/],
  ]
  for (const [args, message] of feedRefused) {
    const [cmd, argv] = nodeCommand(feed, [bed.srcA.name, bed.srcB.name, '--count', '10', ...args])
    const run = followTool(net.spawn(bed.ns, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    t.same(await run.exited, { code: 2, signal: null }, `ab-feed ${args.join(' ')}: exit 2`)
    t.match(run.stderr(), message, `ab-feed ${args.join(' ')}: says why`)
  }
})
