// TS-side accounting: the engine's counters become the JSON report without mixing sent and acknowledged
// work (fake counters, no I/O). native.unit.test.ts checks the stats field lists against the C structs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { BucketHistogram } from '@kbx/stats'
import type { FloodStats } from './engine.js'
import { floodReport, readTransactions } from './flood.js'
import { KBX_QUIC_FLOOD_STATS_FIELDS, KBX_QUIC_LATENCY_LAYOUT } from './native.js'

t.test('floodReport: acked is reported as acked, units converted', async (t) => {
  const s = Object.fromEntries(KBX_QUIC_FLOOD_STATS_FIELDS.map((f) => [f, 0])) as FloodStats
  Object.assign(s, { tx_sent: 10, tx_acked: 7, tx_unacked_closed: 1, tx_bytes_sent: 2350, tx_bytes_acked: 1645, rtt_min_ns: 250_000, rtt_smoothed_ns: 1_500_000, handshake_ns: 4_000_000, blocked_streams_ns: 3_000_000, blocked_flow_ns: 500_000 })
  const counts = new Float64Array(KBX_QUIC_LATENCY_LAYOUT.length)
  for (const ns of [1_000_000, 2_000_000, 3_000_000]) counts[KBX_QUIC_LATENCY_LAYOUT.index(ns)]! += 1
  const r = floodReport(s, BucketHistogram.of(KBX_QUIC_LATENCY_LAYOUT, counts, { minNs: 1_000_000, maxNs: 3_000_000, sumNs: 6_000_000 }))
  t.equal(r.sent, 10)
  t.equal(r.acked, 7, 'acked is the acknowledged count, not the sent one')
  t.equal(r.unackedAtClose, 1)
  t.equal(r.bytesAcked, 1645)
  t.same(r.rttUs, { min: 250, smoothed: 1500, latest: 0 })
  t.equal(r.handshakeUs, 4000)
  t.equal(r.blockedOnMaxStreamsMs, 3)
  t.equal(r.blockedOnFlowControlMs, 0.5)
  t.equal(r.ackLatencyUs.count, 3, 'one latency sample per acknowledged transaction recorded')
  t.match(r.ackLatencyUs, { min: 1000, mean: 2000, max: 3000 }, 'the exact extremes and mean, in µs')
  t.ok(Math.abs(r.ackLatencyUs.p50 - 2000) < 2000 / 128, `p50 ${r.ackLatencyUs.p50} µs: the middle value within its bucket`)
})

t.test('readTransactions: base64 lines, blank lines ignored, sizes checked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-quic-unit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'txs')
  writeFileSync(file, `${Buffer.from('abc').toString('base64')}\n\n  ${Buffer.alloc(1232, 7).toString('base64')}  \n`)
  t.same(readTransactions(file).map((b) => b.length), [3, 1232])
  writeFileSync(file, `${Buffer.alloc(1233).toString('base64')}\n`)
  t.throws(() => readTransactions(file), /line 1: 1233 bytes/)
  writeFileSync(file, '\n\n')
  t.throws(() => readTransactions(file), /no transactions/)
  t.throws(() => readTransactions(join(dir, 'missing')), /--tx-file/)
})
