// --order sequence on real veths: under reorder and loss on both lines and true gaps, the delivered numbers
// (the --pcap output, in delivery order) strictly increase per stream; holes are given up on after --hold-us,
// or filled by MoldUDP64 recovery before it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { parseFrame, readPcap } from '@kbx/net'
import { waitUntil, withTestNet } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'
import { decodePayload, type FeedFormat } from '@kbx/ab'
import { abBed, runFeedOnBed, startArbitrator } from './testing/ab-bed.js'

t.setTimeout(180_000)

/** Per stream, the delivered numbers in delivery order. */
function deliveredInOrder(path: string, format: FeedFormat): Map<string, bigint[]> {
  const streams = new Map<string, bigint[]>()
  for (const p of readPcap(path).packets) {
    const f = parseFrame(p.data)
    if (!f.ok) continue
    const d = decodePayload(format, p.data.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength))
    if (d.kind !== 'data') continue
    const list = streams.get(d.stream) ?? []
    for (let i = 0n; i < BigInt(d.count); i++) list.push(d.sequence + i)
    streams.set(d.stream, list)
  }
  return streams
}

function checkIncreasing(t: Test, streams: Map<string, bigint[]>): number {
  let total = 0
  for (const [stream, list] of streams) {
    const bad = list.findIndex((n, i) => i > 0 && n <= list[i - 1]!)
    t.equal(bad, -1, `stream ${stream}: ${list.length} numbers strictly increasing${bad >= 0 ? ` (${list[bad - 1]} then ${list[bad]})` : ''}`)
    total += list.length
  }
  return total
}

async function stop(t: Test, arb: ToolRun, union: number): Promise<Record<string, any>> {
  await waitUntil('the union to be delivered', () => arb.events.some((e) => e.event === 'interval' && e.data['delivered'] >= union), 30000).catch(() => {})
  arb.child.kill('SIGINT')
  t.same(await arb.exited, { code: 0, signal: null }, arb.stderr())
  return arb.events.find((e) => e.event === 'end')!.data
}

t.test('--order sequence under reorder and loss on both lines: strictly increasing per stream, holes given up on after --hold-us', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-aborder-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pcap = join(dir, 'delivered.pcap')
  const arb = await startArbitrator(net, bed, ['--order', 'sequence', '--hold-us', '100000', '--pcap', pcap])
  const fd = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--count', '3000', '--streams', '2', '--seed', '8', '--rate', '5000',
    '--reorder-a', '0.2:32', '--reorder-b', '0.2:32', '--loss-a', '0.1', '--loss-b', '0.1', '--gap', '0.01', '--delay-b', '30'])
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  const end = await stop(t, arb, truth['union'])
  const order = end['order']
  t.ok(order.held > 0, `packets waited for holes: ${order.held}`)
  t.equal(order.heldNow, 0, 'nothing held at the end')
  t.equal(order.late, 0, 'no packet came after its hole was given up on')
  t.equal(order.holdOverflow, 0, 'the hold never overflowed')
  t.equal(order.skippedMessages, truth['withheld'].count, 'the numbers given up on are the withheld ones')
  t.equal(order.heldUs.count, order.held, 'a hold time per held packet')
  t.ok(order.heldUs.p50 > 0 && order.heldUs.p999 >= order.heldUs.p50 && order.heldUs.max >= order.heldUs.p99, `hold times: ${JSON.stringify(order.heldUs)}`)
  t.ok(order.heldUs.max >= 100_000 * 0.9, 'holes before true gaps were held about --hold-us')
  const delivered = deliveredInOrder(pcap, 'optiq')
  t.equal(checkIncreasing(t, delivered), truth['union'], 'every number of the union delivered, in order')
})

t.test('--order sequence with recovery: withheld numbers recovered in place, nothing given up on', async (t) => {
  const net = withTestNet(t)
  const bed = abBed(net)
  const dir = mkdtempSync(join(tmpdir(), 'kbx-aborder-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pcap = join(dir, 'delivered.pcap')
  const server = `${bed.srcA.ip}:9000`
  const arb = await startArbitrator(net, bed, ['--format', 'moldudp64', '--order', 'sequence', '--hold-us', '2000000', '--rerequest', server, '--gap-wait-us', '100000', '--pcap', pcap])
  const count = 3000
  const fd = await runFeedOnBed(net, bed, ['--dst-a', bed.dstA.ip!, '--dst-b', bed.dstB.ip!, '--format', 'moldudp64', '--count', String(count), '--seed', '4', '--rate', '5000',
    '--reorder-a', '0.1:16', '--loss-a', '0.1', '--loss-b', '0.1', '--gap', '0.01', '--serve-rerequests', server, '--serve-linger', '2'])
  t.same(await fd.exited, { code: 0, signal: null }, fd.stderr())
  const truth = fd.events.find((e) => e.event === 'end')!.data
  const end = await stop(t, arb, truth['union'])
  t.equal(end['recovered'], end['gaps'], 'every gap recovered')
  t.equal(end['order'].skippedMessages, 0, 'no hole given up on')
  t.equal(end['order'].late, 0)
  const delivered = deliveredInOrder(pcap, 'moldudp64')
  t.equal(checkIncreasing(t, delivered), count, 'every number, recovered ones in their place')
})
