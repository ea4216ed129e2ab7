// MoldUDP64 gap recovery on real veths: ab-feed withholds numbers from both lines and answers requests for
// them (--serve-rerequests); ab-arbitrate (--rerequest) requests every hole and delivers the answers. With
// the server absent, every gap is lost after the retries.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { parseFrame, readPcap } from '@kbx/net'
import { followTool, nodeCommand, waitUntil, withTestNet } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'
import { decodePayload } from '@kbx/ab'
import { AB_ARBITRATE, AB_FEED, abBed, runFeedOnBed, startArbitrator } from './testing/ab-bed.js'

t.setTimeout(240_000)

const SERVER_PORT = 9000

/** (stream/sequence) → copies delivered, from the arbitrator's pcap. */
function delivered(path: string): Map<string, number> {
  const seen = new Map<string, number>()
  for (const p of readPcap(path).packets) {
    const f = parseFrame(p.data)
    if (!f.ok) continue
    const d = decodePayload('moldudp64', p.data.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength))
    if (d.kind !== 'data') continue
    for (let i = 0n; i < BigInt(d.count); i++) {
      const key = `${d.stream}/${d.sequence + i}`
      seen.set(key, (seen.get(key) ?? 0) + 1)
    }
  }
  return seen
}

async function stopArbitrator(t: Test, arb: ToolRun, union: number): Promise<Record<string, any>> {
  await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 30000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  return arb.events.find((e) => e.event === 'end')!.data
}

function gapEvents(arb: ToolRun) {
  return arb.events.filter((e) => e.event === 'gap').map((e) => e.data)
}

function withheldKeys(truth: Record<string, any>): string[] {
  return (truth['withheld'].ranges as { stream: string; from: number; to: number }[]).map((r) => `${r.stream}:${r.from}-${r.to}`).sort()
}

t.test('numbers withheld from both lines are all recovered from ab-feed --serve-rerequests', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-abrec-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pcap = join(dir, 'delivered.pcap')
  const server = `${bed.srcA.ip}:${SERVER_PORT}`
  const arb = await startArbitrator(net, bed, ['--format', 'moldudp64', '--rerequest', server, '--gap-wait-us', '100000', '--pcap', pcap])
  const count = 3000
  const streams = 2
  const fd = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--format', 'moldudp64', '--count', String(count), '--streams', String(streams),
    '--seed', '11', '--rate', '5000', '--gap', '0.01', '--loss-a', '0.05', '--burst-b', '0.01:10', '--serve-rerequests', server, '--serve-linger', '2'])
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  t.comment(JSON.stringify(truth['rerequests']))
  t.ok(truth['withheld'].count > 10, `numbers withheld from both lines: ${truth['withheld'].count}`)
  const end = await stopArbitrator(t, arb, truth['union'])
  t.comment(JSON.stringify(end['recovery']))

  const gaps = gapEvents(arb)
  t.same(gaps.map((g) => `${g['stream']}:${g['from']}-${g['to']}`).sort(), withheldKeys(truth), 'gap events = the withheld numbers')
  t.same(gaps.filter((g) => g['outcome'] !== 'recovered'), [], 'every gap recovered')
  t.ok(gaps.every((g) => typeof g['recoveryUs'] === 'number' && g['recoveryUs'] >= 0), 'each with its recovery time')
  t.equal(end['recovered'], end['gaps'], 'end: recovered == gaps')
  t.equal(end['recovery'].lost, 0, 'none lost')
  t.equal(end['recovery'].messagesRecovered, truth['withheld'].count, 'every withheld message recovered')
  t.equal(end['delivered'], truth['union'], 'the lines delivered their union')
  t.ok(end['recovery'].requests >= end['gaps'], `a request per gap at least: ${end['recovery'].requests}`)
  t.ok(truth['rerequests'].messages >= truth['withheld'].count, `the server answered them: ${JSON.stringify(truth['rerequests'])}`)
  const seen = delivered(pcap)
  t.equal(seen.size, count * streams, 'the pcap holds every number of every stream: union + recovered')
  t.equal([...seen.values()].filter((n) => n > 1).length, 0, 'each exactly once')
})

t.test('--rerequest-max splits a hole into capped requests; all recovered', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const server = `${bed.srcA.ip}:${SERVER_PORT}`
  const arb = await startArbitrator(net, bed, ['--format', 'moldudp64', '--rerequest', server, '--gap-wait-us', '100000', '--rerequest-max', '2'])
  const fd = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--format', 'moldudp64', '--count', '3000',
    '--seed', '5', '--rate', '5000', '--burst-a', '0.02:30', '--burst-b', '0.02:30', '--serve-rerequests', server, '--serve-linger', '2'])
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  const end = await stopArbitrator(t, arb, truth['union'])
  const gaps = gapEvents(arb)
  t.ok(gaps.some((g) => g['count'] > 2), 'a hole of more than 2 numbers')
  t.same(gaps.filter((g) => g['outcome'] !== 'recovered'), [], 'every gap recovered')
  const least = gaps.reduce((n, g) => n + Math.ceil(g['count'] / 2), 0)
  t.ok(end['recovery'].requests >= least, `requests of at most 2 messages: ${end['recovery'].requests} >= ${least}`)
  t.equal(end['recovery'].messagesRecovered, truth['withheld'].count)
})

t.test('with the request server absent, every gap is lost after the retries', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const retries = 2
  const arb = await startArbitrator(net, bed, ['--format', 'moldudp64', '--rerequest', `${bed.srcA.ip}:${SERVER_PORT}`, '--gap-wait-us', '100000', '--rerequest-retries', String(retries), '--rerequest-timeout-us', '5000'])
  const fd = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--format', 'moldudp64', '--count', '2000', '--seed', '3', '--rate', '5000', '--gap', '0.01'])
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  const end = await stopArbitrator(t, arb, truth['union'])
  const gaps = gapEvents(arb)
  t.same(gaps.map((g) => `${g['stream']}:${g['from']}-${g['to']}`).sort(), withheldKeys(truth), 'gap events = the withheld numbers')
  t.same(gaps.filter((g) => g['outcome'] !== 'lost'), [], 'every gap lost')
  t.equal(end['recovered'], 0)
  t.equal(end['recovery'].lost, end['gaps'], 'end: lost == gaps')
  t.equal(end['recovery'].requests, end['gaps'] * (retries + 1), 'each gap requested once and retried --rerequest-retries times')
  t.equal(end['recovery'].pending, 0, 'nothing left waiting')
})

t.test('usage errors: recovery needs moldudp64 on both sides (exit 2, nothing attached)', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const [cmd, argv] = nodeCommand(AB_ARBITRATE, [bed.dstA.name, bed.dstB.name, '--rerequest', '10.0.1.1:9000'])
  const arb = followTool(net.spawn(null, cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.equal((await arb.exited).code, 2, 'ab-arbitrate --rerequest with optiq')
  t.match(arb.stderr(), /--format moldudp64/)
  const [fcmd, fargv] = nodeCommand(AB_FEED, [bed.srcA.name, bed.srcB.name, '--serve-rerequests', '10.0.1.1:9000', '--count', '10'])
  const fd = followTool(net.spawn(bed.ns, fcmd, fargv, { stdio: ['ignore', 'pipe', 'pipe'] }))
  t.equal((await fd.exited).code, 2, 'ab-feed --serve-rerequests with optiq')
  t.match(fd.stderr(), /--format moldudp64/)
})
