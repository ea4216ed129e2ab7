import { commonOptions, flagOption, intOption, optionTable, parseIpPortOption, runLoop, runTool, scaledIntOption, secondsOption, stringOption, valueOption } from '@kbx/cli'
import type { OptionsOf, ToolContext } from '@kbx/cli'
import { KbxError, NetError, UsageError, hasErrno, testBedAddressHint } from '@kbx/errors'
import { RateMeter, formatLiveLine } from '@kbx/stats'
import { base58 } from './base58.js'
import { Identity, KBX_QUIC_SINK_STREAMS_PER_CONNECTION, Sink, readSolanaKeypair } from './engine.js'
import type { SinkStats } from './engine.js'
import {
  KBX_QUIC_MAX_ALPN_LEN,
  KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN,
  KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS,
  KBX_QUIC_QOS_IDLE_TIMEOUT_MS,
  KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS,
  KBX_QUIC_SINK_DEFAULT_MAX_STREAMS,
  KBX_QUIC_MAX_WORKERS,
  KBX_QUIC_SINK_QOS_FIELDS,
} from './native.js'
import { readStakes } from './qos.js'
import { Workers, mergeSinkStats } from './workers.js'

/** quic-sink's options. */
export const sinkOptions = optionTable({
  listen: valueOption('--listen <ip:port>', 'UDP address to listen on', parseIpPortOption('--listen'), { default: { ip: '10.0.0.11', port: 8004 }, defaultText: '10.0.0.11:8004' }),
  alpn: stringOption('--alpn <proto>', 'TLS ALPN', { default: 'solana-tpu' }),
  maxStreams: intOption('--max-streams <n>', 'MAX_STREAMS granted per connection (uni)', { min: 1, max: 1 << 20, default: KBX_QUIC_SINK_DEFAULT_MAX_STREAMS }),
  maxStreamsBidi: intOption('--max-streams-bidi <n>', 'MAX_STREAMS for bidirectional streams (default: --max-streams)', { min: 1, max: 1 << 20 }),
  maxStreamsPerConnection: scaledIntOption(
    '--max-streams-per-connection <n>',
    'unidirectional streams one connection may ever open; then it is closed once quiet (ngtcp2 0.12 frees streams only with their connection)',
    { min: 1, max: 0xffffffff, default: KBX_QUIC_SINK_STREAMS_PER_CONNECTION },
  ),
  idleTimeout: secondsOption('--idle-timeout <sec>', `close idle connections after (default: 30, or ${KBX_QUIC_QOS_IDLE_TIMEOUT_MS / 1000} with --agave-qos)`, { min: 0.001 }),
  maxConnections: intOption('--max-connections <n>', 'connections open at once; more are ignored', { min: 1, max: 1 << 20, default: KBX_QUIC_SINK_DEFAULT_MAX_CONNECTIONS }),
  agaveQos: flagOption(
    '--agave-qos',
    "Agave's stake-weighted QoS: 128 streams unstaked, 128..512 by stake share, 8 connections per unstaked identity and 16 per staked one, 8 new connections per IP per minute, about 200 streams/s per unstaked connection, 2 s idle timeout",
  ),
  stakes: stringOption('--stakes <file>', 'with --agave-qos: the stake table, one "<base58 pubkey> <lamports>" a line (absent: everyone is unstaked)'),
  maxStreamsPerMs: intOption('--max-streams-per-ms <n>', "with --agave-qos: the sink's capacity that staked stream shares divide (Agave's max_streams_per_ms)", {
    min: 1,
    max: 1_000_000,
    default: KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS,
  }),
  maxConnectionsPerIpaddrPerMin: intOption('--max-connections-per-ipaddr-per-min <n>', 'with --agave-qos: new connections one IP may open per minute', {
    min: 1,
    max: 1_000_000,
    default: KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN,
  }),
  busyPoll: intOption('--busy-poll <us>', 'poll instead of sleeping for up to this long after the last packet: lower ACK latency for a core (0: sleep)', { min: 0, max: 10_000_000, default: 0 }),
  keypair: stringOption('--keypair <path>', 'Solana keypair JSON for the server certificate (generated when absent)'),
  workers: intOption(
    '--workers <n>',
    'threads, each with its own UDP socket on --listen (SO_REUSEPORT: the kernel spreads clients over them by 4-tuple hash); --agave-qos limits hold for them all',
    { min: 1, max: KBX_QUIC_MAX_WORKERS, default: 1 },
  ),
  duration: commonOptions.duration,
  interval: commonOptions.interval,
  live: commonOptions.live,
})
export type SinkCliOptions = OptionsOf<typeof sinkOptions>

/** Agave's counters under Agave's names (StreamerStats), to compare with a validator's metrics. */
function qosReport(s: SinkStats): Record<string, number> {
  return Object.fromEntries(KBX_QUIC_SINK_QOS_FIELDS.map((f) => [f, s[f]]))
}

function report(s: SinkStats, peerKey: Buffer | undefined, peerKeys: Buffer[], agaveQos: boolean) {
  return {
    ...(agaveQos ? { qos: qosReport(s), maxStreamsLastAdmitted: s.last_admitted_max_streams } : {}),
    lastClientPublicKey: peerKey?.toString('hex'),
    clientIdentities: peerKeys.map(base58),
    connections: s.connections_accepted,
    connectionsOpen: s.connections_open,
    connectionsClosed: s.connections_closed,
    handshakes: s.handshakes,
    handshakeFailures: s.handshake_failures,
    clientCertificates: s.client_certificates,
    transactions: s.transactions,
    bytes: s.bytes,
    rejected: s.rejected,
    streamsUni: s.streams_uni,
    streamsBidi: s.streams_bidi,
    packetsReceived: s.packets_received,
    packetsSent: s.packets_sent,
    packetsDropped: s.packets_dropped,
    connectionsStreamLimited: s.connections_stream_limited,
  }
}

async function sink(ctx: ToolContext<SinkCliOptions>): Promise<void> {
  const o = ctx.opts
  if (o.alpn.length < 1 || Buffer.byteLength(o.alpn) > KBX_QUIC_MAX_ALPN_LEN) throw new UsageError(`--alpn: 1..${KBX_QUIC_MAX_ALPN_LEN} bytes`)
  if (!o.agaveQos && (o.stakes !== undefined || o.maxStreamsPerMs !== KBX_QUIC_QOS_DEFAULT_MAX_STREAMS_PER_MS || o.maxConnectionsPerIpaddrPerMin !== KBX_QUIC_QOS_CONNECTIONS_PER_IPADDR_PER_MIN))
    throw new UsageError('--stakes, --max-streams-per-ms and --max-connections-per-ipaddr-per-min need --agave-qos')
  const stakes = o.stakes !== undefined ? readStakes(o.stakes) : undefined
  const agaveQos = o.agaveQos === true
  let identity: Identity | undefined
  // several workers present one certificate: a fresh identity made here rather than one per worker's engine
  if (o.keypair || o.workers > 1) {
    identity = Identity.create(o.keypair ? readSolanaKeypair(o.keypair) : undefined)
    ctx.onCleanup(() => identity?.close())
  }
  const sinkOptions = {
    localIp: o.listen.ip,
    maxStreamsUni: o.maxStreams,
    maxStreamsBidi: o.maxStreamsBidi ?? o.maxStreams,
    maxStreamsPerConnection: o.maxStreamsPerConnection,
    idleTimeoutMs: o.idleTimeout !== undefined ? Math.max(1, Math.round(o.idleTimeout * 1000)) : 0,
    maxConnections: o.maxConnections,
    agaveQos,
    ...(agaveQos ? { maxStreamsPerMs: o.maxStreamsPerMs, maxConnectionsPerIpaddrPerMin: o.maxConnectionsPerIpaddrPerMin } : {}),
    ...(stakes ? { stakes } : {}),
    busyPollUs: o.busyPoll,
    alpn: o.alpn,
    ...(identity ? { identity } : {}),
    reusePort: o.workers > 1,
  }
  // worker 0 binds --listen (its port 0: a free one), the others the same port beside it
  const sinks: Sink[] = []
  ctx.onCleanup(() => sinks.forEach((s) => s.close()))
  for (let i = 0; i < o.workers; i++) sinks.push(createSink({ ...sinkOptions, localPort: i === 0 ? o.listen.port : sinks[0]!.port }))
  if (sinks.length > 1) Sink.link(sinks)
  const port = sinks[0]!.port
  const idleTimeoutSec = o.idleTimeout ?? (agaveQos ? KBX_QUIC_QOS_IDLE_TIMEOUT_MS / 1000 : 30)
  ctx.json.start({
    listen: `${o.listen.ip}:${port}`,
    alpn: o.alpn,
    maxStreams: o.maxStreams,
    idleTimeoutSec,
    maxConnections: o.maxConnections,
    workers: o.workers,
    ...(agaveQos
      ? {
          agaveQos: {
            stakedIdentities: stakes?.count ?? 0,
            totalStake: (stakes?.total ?? 0n).toString(),
            maxStreamsPerMs: o.maxStreamsPerMs,
            maxConnectionsPerIpaddrPerMin: o.maxConnectionsPerIpaddrPerMin,
          },
        }
      : {}),
  })
  const workers = Workers.start('sink', sinks.map((s) => s.ptr))
  ctx.onCleanup(() => workers.stop())
  // one pause of the workers: every sink's counters and client keys of the same instant
  const take = () =>
    workers.paused(() => {
      const perWorker = sinks.map((s) => s.stats())
      const keys = new Map<string, Buffer>()
      sinks.forEach((s) => s.peerPublicKeys().forEach((k) => keys.set(k.toString('hex'), k)))
      const last = sinks.map((s) => s.lastPeerPublicKey()).find((k) => k !== undefined)
      return { ...report(mergeSinkStats(perWorker), last, [...keys.values()], agaveQos), workers: perWorker.map(workerReport) }
    })
  const transactionRate = new RateMeter<{ transactions: number }>()
  const stop = await runLoop(
    ctx,
    () => {
      workers.check()
    },
    {
      intervalSec: o.interval,
      durationSec: o.duration,
      wait: () => new Promise<void>((resolve) => setTimeout(resolve, 10)),
      onInterval: (tick) => {
        const r = take()
        const tps = transactionRate.sample({ transactions: r.transactions }).rates.transactions
        ctx.json.interval({ ...r, txPerSec: Math.round(tps) })
        ctx.status.update(formatLiveLine({ tool: 'quic-sink', elapsedSec: Number(tick.elapsedNs) / 1e9, rate: { value: tps, unit: 'tx/s' }, totals: { transactions: r.transactions, connections: r.connectionsOpen } }))
      },
    },
  )
  // the threads stop first: a datagram read after the last count would be acknowledged and never reported
  workers.stop()
  ctx.end({ ...take(), stoppedBy: stop })
}

/** A worker's `data.workers` entry. */
function workerReport(s: SinkStats, worker: number) {
  return { worker, transactions: s.transactions, connections: s.connections_accepted, connectionsOpen: s.connections_open, packetsReceived: s.packets_received, packetsSent: s.packets_sent }
}

export async function main(argv?: readonly string[]): Promise<number> {
  return runTool({
    tool: 'quic-sink',
    description: 'QUIC transaction sink (Agave TPU rules): counts one transaction per stream',
    ...(argv ? { argv } : {}),
    options: sinkOptions,
    examples: [
      'sudo ip netns exec ns1 quic-sink --listen 10.0.0.11:8004',
      'quic-sink --listen 0.0.0.0:8009 --agave-qos --stakes stakes.txt --duration 60',
    ],
    run: sink,
  })
}

/** Sink.create, with the command that makes a missing test-bed address (the default --listen) exist. */
function createSink(config: Parameters<typeof Sink.create>[0]): Sink {
  try {
    return Sink.create(config)
  } catch (err) {
    const hint = hasErrno(err, 'EADDRNOTAVAIL') ? testBedAddressHint(config.localIp ?? '') : undefined
    if (hint === undefined || !(err instanceof KbxError)) throw err
    throw new NetError(err.message, { op: err.op, ...(err.errno === undefined ? {} : { errno: err.errno }), hint, cause: err })
  }
}
