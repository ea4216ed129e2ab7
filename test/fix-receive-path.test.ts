// fix-tcp --io xdp receiving a reordered stream: on the acceptor's veth a tc egress program (bpf/test_reorder,
// test-only) steals the first transmission of every 10th data segment the acceptor sends (TSO and GSO off
// there), so its successors arrive first and the kernel's retransmission fills the hole later. The userspace TCP must hold the
// successors and reassemble: every message intact (FIX checksums hold), nothing re-requested. And
// --tcp-keepalive: probes on an idle session, answered by the acceptor's kernel, the session unharmed.
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '@kbx/ffi'
import { waitUntil } from '@kbx/testbed'
import { fixBed, named, nothingAttached, runFixTcp, startFixTcp } from './testing/fix-bed.js'
import type { FixBed } from './testing/fix-bed.js'

t.setTimeout(180_000)

const reorderObject = join(repoRoot, 'bpf/build/test_reorder.o')

/** The impairing program's counters: [segments seen, first transmissions dropped, retransmissions let through]. */
function reorderCounts(b: FixBed): number[] {
  const filters = JSON.parse(b.net.run(b.netns, 'tc', ['-j', 'filter', 'show', 'dev', b.remoteIface, 'egress'])) as { options?: { prog?: { id: number } } }[]
  const progId = filters.find((f) => f.options?.prog?.id !== undefined)?.options?.prog?.id
  if (progId === undefined) throw new Error('test_reorder is not attached')
  const prog = JSON.parse(b.net.run(null, 'bpftool', ['-j', 'prog', 'show', 'id', String(progId)])) as { map_ids: number[] }
  for (const id of prog.map_ids) {
    const map = JSON.parse(b.net.run(null, 'bpftool', ['-j', 'map', 'show', 'id', String(id)])) as { name: string }
    if (map.name !== 'reorder_counts') continue
    // without BTF for the map, keys and values come as arrays of hex bytes (little-endian)
    const number = (v: number | string[]) => (Array.isArray(v) ? Number(Buffer.from(v.map((x) => parseInt(x, 16))).readBigUInt64LE(0)) : v)
    const entries = JSON.parse(b.net.run(null, 'bpftool', ['-j', 'map', 'dump', 'id', String(id)])) as { key: number | string[]; value: number | string[] }[]
    return entries.map((e) => ({ key: Array.isArray(e.key) ? parseInt(e.key[0]!, 16) : e.key, value: number(e.value) })).sort((x, y) => x.key - y.key).map((e) => e.value)
  }
  throw new Error('no reorder_counts map')
}

t.test('segments from the acceptor reordered on the wire: held, reassembled, every message intact, no ResendRequest', async (t) => {
  const b = await fixBed(t)
  b.net.run(b.netns, 'ethtool', ['-K', b.remoteIface, 'tso', 'off', 'gso', 'off'])
  b.net.run(b.netns, 'tc', ['qdisc', 'add', 'dev', b.remoteIface, 'clsact'])
  b.net.run(b.netns, 'tc', ['filter', 'add', 'dev', b.remoteIface, 'egress', 'bpf', 'direct-action', 'obj', reorderObject, 'sec', 'tc'])
  const run = await runFixTcp(b, ['--orders', '2000', '--rate', '4000', '--reset'], 'xdp')
  const [seen, dropped, passed] = reorderCounts(b)
  t.ok(dropped! >= 3, `the acceptor's first transmissions dropped: ${dropped} of ${seen} data segments`)
  t.ok(passed! > 0, `their retransmissions let through: ${passed}`)
  const tcp = run.end.tcp
  t.ok(tcp.oooHeld > 0, `out-of-order segments held: ${tcp.oooHeld}`)
  t.ok(tcp.oooReassembledBytes > 0, `bytes reassembled: ${tcp.oooReassembledBytes}`)
  // With many holes open at once (the drops bunch up under load) a segment needing a ninth range is dropped
  // and sent again by the peer: counted, never a loss.
  t.ok(tcp.oooOverflows < tcp.oooHeld, `more out-of-order segments held (${tcp.oooHeld}) than turned away for want of a range (${tcp.oooOverflows})`)
  t.equal(tcp.badChecksum, 0)
  t.equal(run.end.parser.badChecksum + run.end.parser.badBodyLength + run.end.parser.garbageBytes, 0, 'every FIX message intact (checksums and lengths hold)')
  t.equal(run.end.orders.sent, 2000)
  t.equal(run.end.orders.acked, 2000, 'every order acked')
  t.equal(run.end.orders.filled, 2000, 'every order filled')
  t.equal(run.end.orders.unmatched, 0)
  t.equal(run.end.session.resendRequestsSent, 0, 'nothing re-requested by us')
  t.equal(run.end.session.resendRequestsReceived, 0, 'nor by the acceptor')
  t.equal(run.end.session.nextTargetSeq, 2 + 2 * 2000 + 1, 'every ExecutionReport (ack and fill per order) and the Logon and Logout received, in sequence')
  t.equal(run.end.closed, 'logout')
  await waitUntil('the acceptor to see the logout', () => named(b.acceptor, 'logout').length === 1)
  nothingAttached(t, b, [run])
})

t.test('--tcp-keepalive: probes while the session idles, answered, the session logs out cleanly; off by default; --io socket: exit 2', async (t) => {
  const b = await fixBed(t)
  const run = await runFixTcp(b, ['--orders', '1', '--reset', '--linger', '4', '--tcp-keepalive', '1'], 'xdp')
  t.ok(run.end.tcp.keepalives >= 1, `keep-alives sent while lingering: ${run.end.tcp.keepalives}`)
  t.equal(run.end.tcp.rstIn + run.end.tcp.rstOut, 0, 'answered: the connection never given up')
  t.equal(run.end.closed, 'logout')
  const quiet = await runFixTcp(b, ['--orders', '1', '--linger', '2'], 'xdp')
  t.equal(quiet.end.tcp.keepalives, 0, 'no keep-alives by default')
  const refused = startFixTcp(b, ['--orders', '1', '--tcp-keepalive', '5'], 'socket')
  t.equal((await refused.exited).code, 2, 'usage error: exit 2')
  t.match(refused.stderr(), /--tcp-keepalive: only with --io xdp/)
  nothingAttached(t, b, [run, quiet])
})
