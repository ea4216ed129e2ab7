// Multicast A/B feeds on the ab bed: ab-arbitrate joins each line's group on its interface through the
// kernel while it runs (ip maddr, /proc/net/mcfilter) and leaves at exit, steers exactly those
// (group, port[, source]) in XDP, delivers the union once, and counts per channel; bad channel
// definitions are usage errors before anything is attached.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { xdpAttachmentOf } from '@kbx/bpf'
import { repoRoot } from '@kbx/ffi'
import { followTool, nodeCommand, runIn, waitUntil, withTestNet } from '@kbx/testbed'
import type { TestNet, ToolRun } from '@kbx/testbed'
import { AB_ARBITRATE, abBed, runFeedOnBed, startArbitrator, type AbBed } from './testing/ab-bed.js'

t.setTimeout(300_000)

const sender = join(repoRoot, 'test/ab-multicast-sender.ts')

type Bed = AbBed

/** Groups (inet lines of `ip maddr show dev IFACE`) joined on an interface of the root namespace. */
function joinedGroups(iface: string): string[] {
  return [...runIn(null, 'ip', ['maddr', 'show', 'dev', iface]).matchAll(/^\s*inet\s+(\S+)/gm)].map((m) => m[1]!)
}

/** Source filters of the root namespace (/proc/net/mcfilter, which truncates names: by ifindex): "iface group source". */
function sourceFilters(): string[] {
  const names = new Map(readdirSync('/sys/class/net').map((n) => [readFileSync(`/sys/class/net/${n}/ifindex`, 'utf8').trim(), n]))
  const hex = (h: string) => [24, 16, 8, 0].map((s) => (parseInt(h, 16) >>> s) & 255).join('.')
  return runIn(null, 'cat', ['/proc/net/mcfilter'])
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map((f) => `${names.get(f[0]!) ?? f[0]} ${hex(f[2]!)} ${hex(f[3]!)}`)
}

async function runFeed(net: TestNet, bed: Bed, args: string[]): Promise<Record<string, any>> {
  const fd = await runFeedOnBed(net, bed, ['--seed', '11', '--rate', '5000', ...args])
  const exited = await fd.exited
  if (exited.code !== 0) throw new Error(`ab-feed failed: ${fd.stderr()}`)
  return fd.events.find((e) => e.event === 'end')!.data
}

async function stop(t: Test, arb: ToolRun, signal: NodeJS.Signals, deliveredAtLeast: number): Promise<Record<string, any>> {
  await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= deliveredAtLeast), 30000).catch(() => {})
  arb.child.kill(signal)
  t.same(await arb.exited, { code: 0, signal: null }, `ab-arbitrate exits 0 on ${signal}: ${arb.stderr()}`)
  return arb.events.find((e) => e.event === 'end')!.data
}

t.test('two groups: joined on their lines while it runs, left at exit, the union delivered once, other traffic passed', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const arb = await startArbitrator(net, bed, ['--group-a', '233.54.12.1:15001', '--group-b', '233.54.12.2:15001'])
  const start = arb.events.find((e) => e.event === 'start')!.data
  t.same(start['channels'], [{ name: 'ch1', A: '233.54.12.1:15001', B: '233.54.12.2:15001' }], 'the channel in the start event')
  t.same(start['memberships'], [{ iface: bed.dstA.name, group: '233.54.12.1' }, { iface: bed.dstB.name, group: '233.54.12.2' }], 'one membership per line')
  t.ok(joinedGroups(bed.dstA.name).includes('233.54.12.1'), `line A joined 233.54.12.1: ${joinedGroups(bed.dstA.name)}`)
  t.notOk(joinedGroups(bed.dstA.name).includes('233.54.12.2'), "line A did not join B's group")
  t.ok(joinedGroups(bed.dstB.name).includes('233.54.12.2'), `line B joined 233.54.12.2: ${joinedGroups(bed.dstB.name)}`)
  t.notOk(joinedGroups(bed.dstB.name).includes('233.54.12.1'), "line B did not join A's group")

  const truth = await runFeed(net, bed, ['--dst-a', '233.54.12.1', '--dst-b', '233.54.12.2', '--port', '15001', '--count', '3000', '--loss-a', '0.1', '--loss-b', '0.1', '--gap', '0.01', '--streams', '2'])
  const union = truth['union'] as number
  t.ok(union > 5000, `the feeder sent a union of ${union}`)
  // The same port to the line's own unicast address: not a channel, passed to the kernel.
  const unicast = await runFeed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--port', '15001', '--count', '300'])
  t.equal(unicast['union'], 300)
  const end = await stop(t, arb, 'SIGTERM', union)

  t.equal(end['delivered'], union, 'delivered = the union of both lines')
  t.equal(end['duplicatesDelivered'], 0, 'no number delivered twice')
  t.equal(end['lost'], truth['withheld'].count, 'lost = the numbers withheld from both lines')
  const ch = end['channels'][0]
  t.equal(ch.name, 'ch1')
  t.equal(ch.won.A + ch.won.B, union, "the channel's winners = the union")
  t.equal(ch.steered, union, 'every winner was steered to a socket')
  t.ok(ch.won.A > 0 && ch.won.B > 0, `both lines won: A ${ch.won.A}, B ${ch.won.B}`)
  t.equal(ch.packets, truth['lines'].A.sent + truth['lines'].B.sent, 'every multicast frame sent matched the channel')
  t.ok(end['xdp'].passed >= 600, `the unicast frames to port 15001 were passed: ${end['xdp'].passed}`)
  t.notOk(joinedGroups(bed.dstA.name).includes('233.54.12.1'), 'line A left its group at exit')
  t.notOk(joinedGroups(bed.dstB.name).includes('233.54.12.2'), 'line B left its group at exit')
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'line A detached at exit')
  t.same(xdpAttachmentOf(bed.dstB.name).programs, [], 'line B detached at exit')
})

t.test('source-specific joins: the group from another source is ignored, from the named source delivered', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  // Line A names a source that is not the feeder; line B names the feeder's address on line B.
  const arb = await startArbitrator(net, bed, ['--group-a', '232.1.1.1:15002@10.9.9.9', '--group-b', `232.1.1.2:15002@${bed.srcB.ip}`])
  t.ok(joinedGroups(bed.dstA.name).includes('232.1.1.1'), 'line A joined 232.1.1.1')
  t.ok(sourceFilters().includes(`${bed.dstA.name} 232.1.1.1 10.9.9.9`), `the kernel holds the source filter 232.1.1.1 from 10.9.9.9: ${sourceFilters()}`)
  t.ok(sourceFilters().includes(`${bed.dstB.name} 232.1.1.2 ${bed.srcB.ip}`), 'and 232.1.1.2 from the feeder on line B')
  const truth = await runFeed(net, bed, ['--dst-a', '232.1.1.1', '--dst-b', '232.1.1.2', '--port', '15002', '--count', '2000'])
  const union = truth['union'] as number
  const end = await stop(t, arb, 'SIGINT', union)
  t.equal(end['delivered'], union, 'delivered = the union, all from line B')
  t.equal(end['lines'].A.won, 0, "nothing won on line A: its frames come from another source than the join's")
  t.equal(end['lines'].B.won, union)
  t.equal(end['channels'][0].won.A, 0)
  t.ok(end['xdp'].passed >= truth['lines'].A.sent, `line A's frames were passed to the kernel: ${end['xdp'].passed} ≥ ${truth['lines'].A.sent}`)
  t.notOk(sourceFilters().some((f) => f.startsWith(`${bed.dstA.name} `) || f.startsWith(`${bed.dstB.name} `)), 'the source filters are gone after exit')
})

t.test('--feeds FILE with two channels: per-channel counters, the kernel-sent channel too', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-feeds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'feeds.txt')
  writeFileSync(file, ['# name  line A  line B  format', 'cash   233.54.13.1:15003  233.54.13.2:15003  optiq', '', 'deriv, 233.54.13.3:15004, 233.54.13.4:15004, optiq  # a comment', ''].join('\n'))
  const arb = await startArbitrator(net, bed, ['--feeds', file])
  t.same(arb.events.find((e) => e.event === 'start')!.data['channels'].map((c: { name: string }) => c.name), ['cash', 'deriv'])
  t.same(joinedGroups(bed.dstA.name).filter((g) => g.startsWith('233.54.13.')).sort(), ['233.54.13.1', '233.54.13.3'], 'line A joined both channels\' A groups')
  t.same(joinedGroups(bed.dstB.name).filter((g) => g.startsWith('233.54.13.')).sort(), ['233.54.13.2', '233.54.13.4'], 'line B joined both channels\' B groups')
  const truth = await runFeed(net, bed, ['--dst-a', '233.54.13.1', '--dst-b', '233.54.13.2', '--port', '15003', '--count', '2000', '--loss-b', '0.2'])
  // The second channel from the kernel's own UDP stack in the feed namespace (session 2000: its own stream).
  const [scmd, sargv] = nodeCommand(sender, [bed.srcA.ip!, '233.54.13.3', bed.srcB.ip!, '233.54.13.4', '15004', '2000', '500'])
  const snd = followTool(net.spawn(bed.ns, scmd, sargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.same(await snd.exited, { code: 0, signal: null }, snd.stderr())
  const union = (truth['union'] as number) + 500
  const end = await stop(t, arb, 'SIGINT', union)
  t.equal(end['delivered'], union, 'delivered = both channels\' unions')
  const [cash, deriv] = end['channels']
  t.equal(cash.name, 'cash')
  t.equal(cash.won.A + cash.won.B, truth['union'], 'cash: winners = its feeder\'s union')
  t.equal(cash.duplicatesDropped.A + cash.duplicatesDropped.B, truth['lines'].A.sent + truth['lines'].B.sent - truth['union'], 'cash: every other copy dropped')
  t.equal(deriv.name, 'deriv')
  t.equal(deriv.won.A + deriv.won.B, 500, 'deriv: winners = the 500 numbers sent')
  t.equal(deriv.packets, 1000, 'deriv: both copies of each number matched')
  t.ok(arb.events.some((e) => e.event === 'interval' && Array.isArray(e.data['channels'])), 'interval events carry the channels too')
})

t.test('bad channel definitions: exit 2 with a clear message before anything is attached', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-feeds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const badLine = join(dir, 'bad-line.txt')
  writeFileSync(badLine, 'ch1 233.1.1.1:15001 233.1.1.2:15001 optiq\nch2 233.1.1.3:15001 10.0.0.1:15001 optiq\n')
  const badFields = join(dir, 'bad-fields.txt')
  writeFileSync(badFields, '# channels\nch1 233.1.1.1:15001 optiq\n')
  const mold = join(dir, 'mold.txt')
  writeFileSync(mold, 'itch 233.1.1.1:15001 233.1.1.2:15001 moldudp64\n')
  const cases: [string[], RegExp][] = [
    [['--group-a', '233.1.1.1', '--group-b', '233.1.1.2:15001'], /--group-a: expected GROUP:PORT\[@SOURCE\], got "233.1.1.1"/],
    [['--group-a', '10.0.1.2:15001', '--group-b', '233.1.1.2:15001'], /--group-a: 10\.0\.1\.2 is a unicast address, not a multicast group/],
    [['--group-a', '233.1.1.1:70000', '--group-b', '233.1.1.2:15001'], /port "70000": expected 1\.\.65535/],
    [['--group-a', '232.1.1.1:15001@239.1.1.1', '--group-b', '232.1.1.2:15001'], /source 239\.1\.1\.1 is not a unicast host address/],
    [['--group-a', '233.1.1.1:15001'], /--group-a given 1 time\(s\), --group-b 0/],
    [['--feeds', badLine], new RegExp(`${badLine}:2 line B: 10\\.0\\.0\\.1 is a unicast address`)],
    [['--feeds', badFields], new RegExp(`${badFields}:2: expected 4 fields`)],
    [['--feeds', mold], /channel itch is moldudp64 but the run arbitrates optiq/],
    [['--feeds', join(dir, 'absent.txt')], /cannot read it \(ENOENT\)/],
    [['--feeds', mold, '--group-a', '233.1.1.1:1', '--group-b', '233.1.1.2:1'], /--feeds and --group-a\/--group-b both define channels/],
  ]
  for (const [args, message] of cases) {
    const [cmd, argv] = nodeCommand(AB_ARBITRATE, [bed.dstA.name, bed.dstB.name, ...args])
    const run = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
    t.same(await run.exited, { code: 2, signal: null }, `exit 2: ${args.join(' ')}`)
    t.match(run.stderr(), message, `the message says what is wrong: ${args.join(' ')}`)
    t.notOk(run.events.some((e) => e.event === 'start'), 'no start event')
  }
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'nothing attached to line A')
  t.same(xdpAttachmentOf(bed.dstB.name).programs, [], 'nothing attached to line B')
  t.same(joinedGroups(bed.dstA.name).filter((g) => g.startsWith('233.1.') || g.startsWith('232.1.')), [], 'no group joined')
})

t.test('SIGKILL: the kernel drops the memberships with the dead process\'s sockets, and the bpf_links', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const arb = await startArbitrator(net, bed, ['--group-a', '233.54.14.1:15005', '--group-b', '233.54.14.2:15005@' + bed.srcB.ip])
  t.ok(joinedGroups(bed.dstA.name).includes('233.54.14.1'), 'joined on line A')
  t.ok(joinedGroups(bed.dstB.name).includes('233.54.14.2'), 'joined on line B')
  arb.child.kill('SIGKILL')
  t.same(await arb.exited, { code: null, signal: 'SIGKILL' })
  await waitUntil('the memberships to go', () => !joinedGroups(bed.dstA.name).includes('233.54.14.1') && !joinedGroups(bed.dstB.name).includes('233.54.14.2'), 5000).catch(() => {})
  t.notOk(joinedGroups(bed.dstA.name).includes('233.54.14.1'), 'line A: gone')
  t.notOk(joinedGroups(bed.dstB.name).includes('233.54.14.2'), 'line B: gone')
  await waitUntil('the programs to detach', () => xdpAttachmentOf(bed.dstA.name).programs.length === 0 && xdpAttachmentOf(bed.dstB.name).programs.length === 0, 5000).catch(() => {})
  t.same(xdpAttachmentOf(bed.dstA.name).programs, [], 'line A detached')
})
