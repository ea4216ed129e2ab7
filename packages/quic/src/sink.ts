import { commonOptions, intOption, optionTable, parseIpPortOption, runLoop, runTool, scaledIntOption, secondsOption, stringOption, valueOption } from '@kbx/cli'
import type { OptionsOf, ToolContext } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { RateMeter } from '@kbx/stats'
import { base58 } from './base58.js'
import { Identity, KBX_QUIC_SINK_STREAMS_PER_CONNECTION, Sink, readSolanaKeypair } from './engine.js'
import type { SinkStats } from './engine.js'
import { KBX_QUIC_MAX_ALPN_LEN, KBX_QUIC_SINK_DEFAULT_MAX_STREAMS } from './native.js'

/** quic-sink's options. */
export const sinkOptions = optionTable({
  listen: valueOption('--listen <ip:port>', 'UDP address to listen on', parseIpPortOption('--listen'), { default: { ip: '10.0.0.11', port: 8004 } }),
  alpn: stringOption('--alpn <proto>', 'TLS ALPN', { default: 'solana-tpu' }),
  maxStreams: intOption('--max-streams <n>', 'MAX_STREAMS granted per connection (uni)', { min: 1, max: 1 << 20, default: KBX_QUIC_SINK_DEFAULT_MAX_STREAMS }),
  maxStreamsBidi: intOption('--max-streams-bidi <n>', 'MAX_STREAMS for bidirectional streams (default: --max-streams)', { min: 1, max: 1 << 20 }),
  maxStreamsPerConnection: scaledIntOption(
    '--max-streams-per-connection <n>',
    'unidirectional streams one connection may ever open; then it is closed once quiet (ngtcp2 0.12 frees streams only with their connection)',
    { min: 1, max: 0xffffffff, default: KBX_QUIC_SINK_STREAMS_PER_CONNECTION },
  ),
  idleTimeout: secondsOption('--idle-timeout <sec>', 'close idle connections after', { default: 30 }),
  busyPoll: intOption('--busy-poll <us>', 'poll instead of sleeping for up to this long after the last packet: lower ACK latency for a core (0: sleep)', { min: 0, max: 10_000_000, default: 0 }),
  keypair: stringOption('--keypair <path>', 'Solana keypair JSON for the server certificate (generated when absent)'),
  duration: commonOptions.duration,
  interval: commonOptions.interval,
})
export type SinkCliOptions = OptionsOf<typeof sinkOptions>

function report(s: SinkStats, peerKey: Buffer | undefined, peerKeys: Buffer[]) {
  return {
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
  let identity: Identity | undefined
  if (o.keypair) {
    identity = Identity.create(readSolanaKeypair(o.keypair))
    ctx.onCleanup(() => identity?.close())
  }
  const s = Sink.create({
    localIp: o.listen.ip,
    localPort: o.listen.port,
    maxStreamsUni: o.maxStreams,
    maxStreamsBidi: o.maxStreamsBidi ?? o.maxStreams,
    maxStreamsPerConnection: o.maxStreamsPerConnection,
    idleTimeoutMs: o.idleTimeout * 1000,
    busyPollUs: o.busyPoll,
    alpn: o.alpn,
    ...(identity ? { identity } : {}),
  })
  ctx.onCleanup(() => s.close())
  ctx.json.start({ listen: `${o.listen.ip}:${s.port}`, alpn: o.alpn, maxStreams: o.maxStreams, idleTimeoutSec: o.idleTimeout })
  const transactionRate = new RateMeter<{ transactions: number }>()
  const stop = await runLoop(ctx, () => s.run(10), {
    intervalSec: o.interval,
    durationSec: o.duration,
    onInterval: () => {
      const st = s.stats()
      const tps = transactionRate.sample({ transactions: st.transactions }).rates.transactions
      ctx.json.interval({ ...report(st, s.lastPeerPublicKey(), s.peerPublicKeys()), txPerSec: Math.round(tps) })
      ctx.status.update(`${st.transactions} transactions, ${Math.round(tps)} tx/s, ${st.connections_open} connections`)
    },
  })
  ctx.end({ ...report(s.stats(), s.lastPeerPublicKey(), s.peerPublicKeys()), stoppedBy: stop })
}

export async function main(argv?: readonly string[]): Promise<number> {
  return runTool({
    tool: 'quic-sink',
    description: 'QUIC transaction sink (Agave TPU rules): counts one transaction per stream',
    ...(argv ? { argv } : {}),
    options: sinkOptions,
    run: sink,
  })
}
