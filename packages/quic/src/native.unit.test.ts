import t from 'tap'
import { thrown } from '@kbx/errors/testing'
import { SystemError, errnoOf } from '@kbx/errors'
import { compareLayouts, logLinearProbes, type LayoutTable } from '@kbx/ffi/testing'
import { Flood, Identity, Sink } from './engine.js'
import * as native from './native.js'

/**
 * quic-flood's and quic-sink's C↔TS boundary against native/include/kbx_quic.h: the config and stats
 * structs native.ts mirrors (the stats by their field lists), the latency histogram's struct and its layout
 * against the decoder (kbx_histogram.h, @kbx/stats LogLinearLayout), the io and stream enums, the run codes, and
 * every limit and default the command lines take from native.ts.
 */
function table(): LayoutTable {
  return {
    headers: ['kbx_quic.h'],
    structs: [
      { c: 'kbx_quic_flood_config', type: native.KbxQuicFloodConfig },
      { c: 'kbx_quic_flood_stats', type: native.KbxQuicFloodStats },
      { c: 'kbx_quic_sink_config', type: native.KbxQuicSinkConfig },
      { c: 'kbx_quic_sink_stats', type: native.KbxQuicSinkStats },
      { c: 'kbx_quic_latency', type: native.KbxQuicLatency },
      { c: 'kbx_quic_server_addr', type: native.KbxQuicServerAddr },
      { c: 'kbx_quic_close_record', type: native.KbxQuicCloseRecord },
      { c: 'kbx_quic_server_stats', type: native.KbxQuicServerStats },
      { c: 'kbx_quic_conn_info', type: native.KbxQuicConnInfo },
    ],
    constants: [
      { c: 'KBX_QUIC_MAX_TX_SIZE', value: native.KBX_QUIC_MAX_TX_SIZE },
      { c: 'KBX_QUIC_STREAMS_PER_CONNECTION', value: native.KBX_QUIC_STREAMS_PER_CONNECTION },
      { c: 'KBX_QUIC_SINK_STREAMS_PER_CONNECTION', value: native.KBX_QUIC_SINK_STREAMS_PER_CONNECTION },
      { c: 'KBX_QUIC_RUN_SLICE', value: native.KBX_QUIC_RUN_SLICE },
      { c: 'KBX_QUIC_RUN_DONE', value: native.KBX_QUIC_RUN_DONE },
      { c: 'KBX_QUIC_LATENCY_BUCKETS', value: native.KBX_QUIC_LATENCY_LAYOUT.length },
      ...logLinearProbes('KBX_QUIC_LATENCY_SUB_BITS', '64', native.KBX_QUIC_LATENCY_LAYOUT),
      { c: 'KBX_QUIC_MAX_ALPN_LEN', value: native.KBX_QUIC_MAX_ALPN_LEN },
      { c: 'KBX_QUIC_MAX_WORKERS', value: native.KBX_QUIC_MAX_WORKERS },
      { c: 'KBX_QUIC_WORKER_SLICE_MS', value: native.KBX_QUIC_WORKER_SLICE_MS },
      { c: 'KBX_QUIC_HANDOFF_SLOTS', value: native.KBX_QUIC_HANDOFF_SLOTS },
      { c: 'KBX_QUIC_WORKERS_FLOOD', value: native.KBX_QUIC_WORKERS_KIND.flood },
      { c: 'KBX_QUIC_WORKERS_SINK', value: native.KBX_QUIC_WORKERS_KIND.sink },
      { c: 'KBX_QUIC_WORKER_RUNNING', value: native.KBX_QUIC_WORKER_RUNNING },
      { c: 'KBX_QUIC_WORKER_DONE', value: native.KBX_QUIC_WORKER_DONE },
      { c: 'KBX_QUIC_MAX_CONNECTIONS', value: native.KBX_QUIC_MAX_CONNECTIONS },
      { c: 'KBX_QUIC_MAX_SERVERS', value: native.KBX_QUIC_MAX_SERVERS },
      { c: 'KBX_QUIC_MAX_TOTAL_CONNECTIONS', value: native.KBX_QUIC_MAX_TOTAL_CONNECTIONS },
      { c: 'KBX_QUIC_MAX_IDENTITIES', value: native.KBX_QUIC_MAX_IDENTITIES },
      { c: 'KBX_QUIC_SERVER_CLOSES', value: native.KBX_QUIC_SERVER_CLOSES },
      { c: 'KBX_QUIC_CLOSE_REASON_LEN', value: native.KBX_QUIC_CLOSE_REASON_LEN },
      { c: 'KBX_QUIC_SINK_PEER_KEYS', value: native.KBX_QUIC_SINK_PEER_KEYS },
      { c: 'KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS', value: native.KBX_QUIC_DEFAULT_IDLE_TIMEOUT_MS },
      { c: 'KBX_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS', value: native.KBX_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS },
      { c: 'KBX_QUIC_DEFAULT_MAX_BACKOFF_MS', value: native.KBX_QUIC_DEFAULT_MAX_BACKOFF_MS },
      { c: 'KBX_QUIC_SINK_DEFAULT_MAX_STREAMS', value: native.KBX_QUIC_SINK_DEFAULT_MAX_STREAMS },
      { c: 'KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS', value: native.KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS },
      { c: 'KBX_QUIC_TX_BATCH', value: native.KBX_QUIC_TX_BATCH },
      { c: 'KBX_QUIC_DEFAULT_FRAMES', value: native.KBX_QUIC_DEFAULT_FRAMES },
      { c: 'KBX_QUIC_MIN_FRAMES', value: native.KBX_QUIC_MIN_FRAMES },
      { c: 'KBX_QUIC_MAX_FRAMES', value: native.KBX_QUIC_MAX_FRAMES },
      { c: 'KBX_QUIC_MAX_DATAGRAM', value: native.KBX_QUIC_MAX_DATAGRAM },
      { c: 'KBX_QUIC_FRAME_HEADERS', value: native.KBX_QUIC_FRAME_HEADERS },
      { c: 'KBX_QUIC_MIN_FRAME_SIZE', value: native.KBX_QUIC_MIN_FRAME_SIZE },
      { c: 'KBX_QUIC_APP_ERROR_TX_TOO_LARGE', value: 1 },
      { c: 'KBX_QUIC_APP_ERROR_STREAM_LIMIT', value: 2 },
      { c: 'KBX_QUIC_APP_ERROR_TOO_MANY', value: native.KBX_QUIC_APP_ERROR_TOO_MANY },
      { c: 'KBX_QUIC_QOS_UNSTAKED_STREAMS', value: native.KBX_QUIC_QOS_UNSTAKED_STREAMS },
      { c: 'KBX_QUIC_QOS_MAX_STAKED_STREAMS', value: native.KBX_QUIC_QOS_MAX_STAKED_STREAMS },
      { c: 'KBX_QUIC_QOS_CONNECTIONS_PER_UNSTAKED_PEER', value: native.KBX_QUIC_QOS_CONNECTIONS_PER_UNSTAKED_PEER },
      { c: 'KBX_QUIC_QOS_CONNECTIONS_PER_STAKED_PEER', value: native.KBX_QUIC_QOS_CONNECTIONS_PER_STAKED_PEER },
      { c: 'KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN', value: native.KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN },
      { c: 'KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS', value: native.KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS },
      { c: 'KBX_QUIC_QOS_IDLE_TIMEOUT_MS', value: native.KBX_QUIC_QOS_IDLE_TIMEOUT_MS },
      { c: 'KBX_QUIC_QOS_MAX_STAKES', value: native.KBX_QUIC_QOS_MAX_STAKES },
    ],
    enums: [
      { c: 'kbx_quic_io', values: { KBX_QUIC_IO_SOCKET: native.KBX_QUIC_IO.socket, KBX_QUIC_IO_XDP: native.KBX_QUIC_IO.xdp } },
      {
        c: 'kbx_quic_streams',
        values: { KBX_QUIC_STREAMS_UNI: native.KBX_QUIC_STREAMS.uni, KBX_QUIC_STREAMS_BIDI: native.KBX_QUIC_STREAMS.bidi },
      },
      { c: 'kbx_quic_fanout', values: { KBX_QUIC_FANOUT_ALL: native.KBX_QUIC_FANOUT.all, KBX_QUIC_FANOUT_SPREAD: native.KBX_QUIC_FANOUT.spread } },
      {
        c: 'kbx_quic_server_state',
        values: Object.fromEntries(native.KBX_QUIC_SERVER_STATES.map((name, i) => [`KBX_QUIC_SERVER_${name.toUpperCase()}`, i])),
      },
    ],
  }
}

t.test('the QUIC engine: every struct, member, enum and limit agrees with kbx_quic.h', async (t) => {
  const report = compareLayouts(table())
  t.same(report.mismatches, [])
  t.ok(report.checked > 150, `${report.checked} comparisons`)
})

t.test('the engine refuses what the limits refuse', async (t) => {
  const identity = Identity.create()
  t.teardown(() => identity.close())
  const base = { io: 'socket' as const, streams: 'uni' as const, localIp: '127.0.0.1', servers: [{ ip: '127.0.0.1', port: 9 }], identities: [identity], transactions: [Buffer.alloc(10, 1)] }
  for (const [what, extra, pattern] of [
    ['too many connections', { connections: native.KBX_QUIC_MAX_CONNECTIONS + 1 }, /at most 64/],
    ['an ALPN over the limit', { alpn: 'x'.repeat(native.KBX_QUIC_MAX_ALPN_LEN + 1) }, /ALPN must be 1\.\.255 bytes/],
    ['xdp io without a socket', { io: 'xdp' as const }, /needs an AF_XDP socket/],
  ] as const) {
    t.throws(() => Flood.create({ ...base, ...extra }), pattern, what)
  }
  t.throws(() => Sink.create({ localPort: 0, alpn: 'x'.repeat(native.KBX_QUIC_MAX_ALPN_LEN + 1), identity }), /ALPN must be 1\.\.255 bytes/)
  const atLimit = Flood.create({ ...base, connections: native.KBX_QUIC_MAX_CONNECTIONS, alpn: 'x'.repeat(native.KBX_QUIC_MAX_ALPN_LEN) })
  t.equal(atLimit.localPort > 0, true, 'the limits themselves are taken')
  t.equal(atLimit.takeLatencies().count, 0, 'no latency before any acknowledgement')
  atLimit.close()
})

t.test('a failing engine call surfaces operation, errno and particulars through the one reader', async (t) => {
  const identity = Identity.create()
  t.teardown(() => identity.close())
  const base = { io: 'socket' as const, streams: 'uni' as const, localIp: '127.0.0.1', servers: [{ ip: '127.0.0.1', port: 9 }], identities: [identity], transactions: [Buffer.alloc(10, 1)] }
  const err = thrown(() => Flood.create({ ...base, connections: native.KBX_QUIC_MAX_CONNECTIONS + 1 }))
  t.type(err, SystemError)
  t.match(err, { op: 'create QUIC flooder', errno: errnoOf('EINVAL'), code: 'EINVAL' })
  t.equal((err as SystemError).message, `create QUIC flooder failed: EINVAL (${native.KBX_QUIC_MAX_CONNECTIONS + 1} connections per server: at most ${native.KBX_QUIC_MAX_CONNECTIONS})`)
  const alpn = thrown(() => Sink.create({ localPort: 0, alpn: 'x'.repeat(native.KBX_QUIC_MAX_ALPN_LEN + 1), identity }))
  t.match(alpn, { op: 'set ALPN', code: 'EINVAL', message: /ALPN must be 1\.\.255 bytes/ }, 'a helper of the engine names its own operation')
  const keypair = Buffer.alloc(64, 7)
  t.match(thrown(() => Identity.create(keypair)), { name: 'UsageError', op: 'create Ed25519 identity', message: /does not belong to the/ }, 'a keypair C refuses is a usage error')
})

