// The workers' control path without I/O: how a flood is spread over its workers, and how their counters,
// latencies and server reports merge into the one report (fake counters). The threads themselves run in
// test/quic-workers.test.ts against real sockets.
import t from 'tap'
import { BucketHistogram, summarizeLatency } from '@kbx/stats'
import type { FloodStats, ServerStats, SinkStats } from './engine.js'
import { KBX_QUIC_FLOOD_STATS_FIELDS, KBX_QUIC_LATENCY_LAYOUT, KBX_QUIC_SINK_STATS_FIELDS } from './native.js'
import { floodWorkerShares, mergeFloodStats, mergeServerStats, mergeSinkStats, rotate, splitEvenly } from './workers.js'

const floodStats = (values: Partial<FloodStats>): FloodStats =>
  Object.assign(Object.fromEntries(KBX_QUIC_FLOOD_STATS_FIELDS.map((f) => [f, 0])) as FloodStats, values)

function latencies(ns: number[]): BucketHistogram {
  const counts = new Float64Array(KBX_QUIC_LATENCY_LAYOUT.length)
  for (const v of ns) counts[KBX_QUIC_LATENCY_LAYOUT.index(v)]! += 1
  return BucketHistogram.of(KBX_QUIC_LATENCY_LAYOUT, counts, { minNs: Math.min(...ns), maxNs: Math.max(...ns), sumNs: ns.reduce((a, b) => a + b, 0) })
}

function server(name: string, values: Partial<ServerStats>): ServerStats {
  return {
    server: name,
    state: 'active',
    connectionsOpen: 0,
    sent: 0,
    acked: 0,
    unackedAtClose: 0,
    handshakes: 0,
    connectAttempts: 0,
    connectionsClosed: 0,
    blockedStreamsNs: 0,
    closes: [],
    closesNotKept: 0,
    latencies: new BucketHistogram(KBX_QUIC_LATENCY_LAYOUT),
    connections: [],
    ...values,
  }
}

t.test('mergeFloodStats: counters summed exactly, round-trip times as one flood sees them', async (t) => {
  const a = floodStats({ tx_sent: 100, tx_acked: 90, tx_unacked_closed: 1, packets_received: 7, rx_frames: 5, rx_handed_off: 2, rx_handoff_received: 3, connections_open: 1, rtt_min_ns: 300, rtt_smoothed_ns: 1000, rtt_latest_ns: 1100, handshake_ns: 5000, handshakes: 1 })
  const b = floodStats({ tx_sent: 50, tx_acked: 49, packets_received: 4, rx_frames: 6, rx_handed_off: 3, rx_handoff_received: 2, connections_open: 3, rtt_min_ns: 200, rtt_smoothed_ns: 2000, rtt_latest_ns: 2100, handshake_ns: 7000, handshakes: 3, last_close_error: 4 })
  const m = mergeFloodStats([a, b])
  t.equal(m.tx_sent, 150)
  t.equal(m.tx_acked, 139, 'acked: the exact sum of the workers')
  t.equal(m.tx_unacked_closed, 1)
  t.equal(m.packets_received, 11)
  t.equal(m.rx_frames, 11)
  t.equal(m.rx_handed_off, m.rx_handoff_received, 'what one worker handed over, the other received')
  t.equal(m.handshakes, 4)
  t.equal(m.connections_open, 4)
  t.equal(m.rtt_min_ns, 200, 'the lowest minimum')
  t.equal(m.rtt_smoothed_ns, 1750, 'the mean over open connections: (1000 x 1 + 2000 x 3) / 4')
  t.equal(m.rtt_latest_ns, 1100, "the first worker's latest sample (as the first connection's in one engine)")
  t.equal(m.handshake_ns, 5000, 'a handshake time, not a sum of them')
  t.equal(m.last_close_error, 4, 'the close error a worker saw')
  t.same(mergeFloodStats([a]), a, 'one worker: its counters unchanged')
  const idle = mergeFloodStats([floodStats({ tx_sent: 3 }), floodStats({ tx_sent: 4 })])
  t.same([idle.rtt_min_ns, idle.rtt_smoothed_ns, idle.rtt_latest_ns], [0, 0, 0], 'no open connection: no round-trip time')
  t.throws(() => mergeFloodStats([]), /no worker stats/)
})

t.test('mergeServerStats: a server reached by every worker is one entry with every connection, latency and close', async (t) => {
  const w0 = [
    server('10.0.0.11:8004', { acked: 10, sent: 11, handshakes: 1, connectionsOpen: 1, closes: [{ code: 4, reason: 'too many', count: 1 }], latencies: latencies([1000, 2000]), connections: [{ identity: 0, state: 'established', localPort: 40000, handshakes: 1, acked: 10 }] }),
    server('10.0.0.12:8004', { acked: 5, state: 'removing' }),
  ]
  const w1 = [
    server('10.0.0.11:8004', { acked: 20, sent: 20, handshakes: 2, connectionsOpen: 1, closes: [{ code: 4, reason: 'too many', count: 2 }, { code: 0, reason: 'idle', count: 1 }], latencies: latencies([3000]), connections: [{ identity: 1, state: 'established', localPort: 40001, handshakes: 2, acked: 20 }] }),
    server('10.0.0.12:8004', { acked: 6, state: 'active' }),
  ]
  const m = mergeServerStats([w0, w1])
  t.same(m.map((s) => s.server), ['10.0.0.11:8004', '10.0.0.12:8004'], 'one entry per server, in order')
  t.equal(m[0]!.acked, 30)
  t.equal(m[0]!.sent, 31)
  t.equal(m[0]!.handshakes, 3)
  t.equal(m[0]!.connectionsOpen, 2)
  t.same(m[0]!.closes, [{ code: 4, reason: 'too many', count: 3 }, { code: 0, reason: 'idle', count: 1 }], 'the same close counted once, summed')
  t.same(m[0]!.connections.map((c) => c.localPort), [40000, 40001], "both workers' connections")
  t.match(summarizeLatency(m[0]!.latencies), { count: 3, min: 1, max: 3, mean: 2 }, 'latencies merged exactly')
  t.equal(m[1]!.acked, 11)
  t.equal(m[1]!.state, 'active', 'active in one worker is active')
  t.equal(w0[0]!.acked, 10, "the workers' own reports are left as they were")
  t.equal(w0[0]!.closes[0]!.count, 1)
})

t.test('mergeSinkStats: sums, but the shared QoS load is one value', async (t) => {
  const sink = (values: Partial<SinkStats>): SinkStats => Object.assign(Object.fromEntries(KBX_QUIC_SINK_STATS_FIELDS.map((f) => [f, 0])) as SinkStats, values)
  const m = mergeSinkStats([
    sink({ transactions: 7, connections_accepted: 2, connection_add_failed_unstaked_node: 1, staked_stream_load_ema: 40, staked_throttling_enabled: 1, last_admitted_max_streams: 128 }),
    sink({ transactions: 5, connections_accepted: 3, connection_add_failed_unstaked_node: 2, staked_stream_load_ema: 40, staked_throttling_enabled: 1 }),
  ])
  t.equal(m.transactions, 12)
  t.equal(m.connections_accepted, 5)
  t.equal(m.connection_add_failed_unstaked_node, 3)
  t.equal(m.staked_stream_load_ema, 40, 'the load every worker shares, not twice it')
  t.equal(m.staked_throttling_enabled, 1)
  t.equal(m.last_admitted_max_streams, 128)
})

t.test('floodWorkerShares: connections, count and rate spread, identities continued; impossible splits are usage errors', async (t) => {
  t.same(splitEvenly(10, 3), [4, 3, 3])
  t.same(splitEvenly(0, 2), [0, 0])
  t.same(floodWorkerShares({ workers: 1, connections: 3, count: 7, rate: 0 }), [{ connections: 3, count: 7, rate: 0, identityOffset: 0 }])
  t.same(floodWorkerShares({ workers: 2, connections: 5, count: 101, rate: 1000 }), [
    { connections: 3, count: 51, rate: 500, identityOffset: 0 },
    { connections: 2, count: 50, rate: 500, identityOffset: 3 },
  ])
  t.same(rotate(['a', 'b', 'c'], 4), ['b', 'c', 'a'], "worker 1's first connection (the flood's fourth) presents the flood's fourth identity")
  t.throws(() => floodWorkerShares({ workers: 0, connections: 1, count: 0, rate: 0 }), { exitCode: 2, message: /--workers 0/ })
  t.throws(() => floodWorkerShares({ workers: 17, connections: 32, count: 0, rate: 0 }), { exitCode: 2, message: /--workers 17: 1\.\.16/ })
  t.throws(() => floodWorkerShares({ workers: 2, connections: 1, count: 0, rate: 0 }), { exitCode: 2, message: /--connections 1 over --workers 2/ })
  t.throws(() => floodWorkerShares({ workers: 2, connections: 2, count: 1, rate: 0 }), { exitCode: 2, message: /--count 1/ })
  t.throws(() => floodWorkerShares({ workers: 2, connections: 2, count: 0, rate: 1 }), { exitCode: 2, message: /--rate 1/ })
})
