// The fan-out's control path without I/O: the servers file, the server plan's usage errors, and a
// server's report (fake engine counters).
import t from 'tap'
import { BucketHistogram } from '@kbx/stats'
import type { ServerStats } from './engine.js'
import { serverPlan } from './flood.js'
import { KBX_QUIC_LATENCY_LAYOUT } from './native.js'
import { ServerLatencies, parseServersFile } from './servers.js'

t.test('parseServersFile: one ip:port a line, # comments and blank lines ignored, bad lines named', async (t) => {
  t.same(parseServersFile('# leaders\n10.0.0.11:8004\n\n  10.0.0.12:8005  # next\n', 'f'), [
    { ip: '10.0.0.11', port: 8004 },
    { ip: '10.0.0.12', port: 8005 },
  ])
  t.same(parseServersFile('# none\n', 'f'), [])
  t.throws(() => parseServersFile('10.0.0.11:8004\nleader\n', 'f'), /f line 2/)
  t.throws(() => parseServersFile('10.0.0.11:8004\n10.0.0.11:8004\n', 'f'), /line 2: 10\.0\.0\.11:8004 is listed twice/)
  t.throws(() => parseServersFile('10.0.0.11:70000\n', 'f'), /line 1/)
})

t.test('serverPlan: slots, keep-trying and the identity limit', async (t) => {
  const base = { connections: 1, reconnect: true }
  t.match(serverPlan({ ...base }), { servers: [{ ip: '10.0.0.11', port: 8004 }], maxServers: 1, keepTrying: false }, 'one default server: failures end the run as before')
  const two = serverPlan({ ...base, server: [{ ip: '10.0.0.1', port: 1 }, { ip: '10.0.0.2', port: 1 }] })
  t.match(two, { maxServers: 2, keepTrying: true }, 'a fan-out keeps trying')
  t.throws(() => serverPlan({ ...base, connections: 64, server: Array.from({ length: 5 }, (_, i) => ({ ip: `10.0.0.${i + 1}`, port: 1 })) }), /at most 32 servers and 256 connections/)
  t.throws(() => serverPlan({ ...base, connections: 3, keypair: ['a', 'b'], maxConnectionsPerIdentity: 1 }), /--connections 3 over 2 identities/)
  t.doesNotThrow(() => serverPlan({ ...base, connections: 4, keypair: ['a', 'b'], maxConnectionsPerIdentity: 2 }))
  t.throws(() => serverPlan({ ...base, maxServers: 4 }), /--max-servers goes with --servers/)
})

t.test('ServerLatencies: interval reports the take, end the whole run; identities by index', async (t) => {
  const take = (ns: number): ServerStats => {
    const counts = new Float64Array(KBX_QUIC_LATENCY_LAYOUT.length)
    counts[KBX_QUIC_LATENCY_LAYOUT.index(ns)] = 1
    return {
      server: '10.0.0.11:8004', state: 'active', connectionsOpen: 1, sent: 1, acked: 1, unackedAtClose: 0, handshakes: 1, connectAttempts: 1,
      connectionsClosed: 0, blockedStreamsNs: 2_000_000, closes: [{ code: 2, reason: 'the server closed the connection', count: 1 }], closesNotKept: 0,
      latencies: BucketHistogram.of(KBX_QUIC_LATENCY_LAYOUT, counts, { minNs: ns, maxNs: ns, sumNs: ns }),
      connections: [{ identity: 1, state: 'established', localPort: 40000, handshakes: 1, acked: 1 }],
    }
  }
  const l = new ServerLatencies()
  const [first] = l.reports([take(1_000_000)], ['keyA', 'keyB'], 'interval')
  t.equal(first?.ackLatencyUs.count, 1)
  t.equal(first?.blockedOnMaxStreamsMs, 2)
  t.equal(first?.connections[0]?.identity, 'keyB', 'the connection names its identity')
  t.same(first?.closes, [{ code: 2, reason: 'the server closed the connection', count: 1 }])
  const [end] = l.reports([take(3_000_000)], ['keyA', 'keyB'], 'total')
  t.equal(end?.ackLatencyUs.count, 2, 'the end report covers every take')
  t.equal(end?.ackLatencyUs.max, 3000)
})
