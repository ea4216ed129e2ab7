import { readFileSync } from 'node:fs'
import { BpfObject, raiseMemlockLimit } from '@kbx/bpf'
import {
  choiceOption,
  commonOptions,
  flagOption,
  intOption,
  optionTable,
  parseIpPortOption,
  runLoop,
  runTool,
  scaledIntOption,
  secondsOption,
  stringOption,
  valueOption,
} from '@kbx/cli'
import type { OptionsOf, ToolContext } from '@kbx/cli'
import { NetError, UsageError } from '@kbx/errors'
import { bpfObjectPath } from '@kbx/ffi'
import { interfaceInfo, resolveNextHop } from '@kbx/net'
import { BucketHistogram, type Distribution, RateMeter, summarizeLatency } from '@kbx/stats'
import { Umem, XskSocket, steerTo } from '@kbx/xsk'
import { Flood, Identity, ipv4NetworkOrder, mockTransactions, readSolanaKeypair } from './engine.js'
import type { FloodStats } from './engine.js'
import {
  KBX_QUIC_DEFAULT_FRAMES,
  KBX_QUIC_LATENCY_LAYOUT,
  KBX_QUIC_MAX_ALPN_LEN,
  KBX_QUIC_MAX_CONNECTIONS,
  KBX_QUIC_MAX_FRAMES,
  KBX_QUIC_MAX_TX_SIZE,
  KBX_QUIC_MIN_FRAMES,
  KBX_QUIC_STREAMS_PER_CONNECTION,
} from './native.js'

/** quic-flood's options. */
export const floodOptions = optionTable({
  iface: stringOption('--iface <name>', 'interface towards the server', { required: true }),
  server: valueOption('--server <ip:port>', 'server (TPU QUIC) address', parseIpPortOption('--server'), { default: { ip: '10.0.0.11', port: 8004 } }),
  io: choiceOption('--io <io>', 'xdp (AF_XDP rings) or socket (kernel UDP, sendmmsg + GSO)', ['xdp', 'socket'], { default: 'xdp' }),
  streams: choiceOption('--streams <kind>', 'uni (one tx per unidirectional stream, Agave) or bidi', ['uni', 'bidi'], { default: 'uni' }),
  txSize: intOption('--tx-size <bytes>', 'size of generated mock transactions', { min: 1, max: 65535, default: 235 }),
  txFile: stringOption('--tx-file <path>', 'transactions to send round-robin: one base64 transaction per line'),
  keypair: stringOption('--keypair <path>', 'Solana keypair JSON (64 numbers) for the client certificate; fresh identity when absent'),
  alpn: stringOption('--alpn <proto>', 'TLS ALPN', { default: 'solana-tpu' }),
  rate: scaledIntOption('--rate <tps>', 'transactions per second (0: as fast as the server allows)', { default: 0 }),
  count: scaledIntOption('--count <n>', 'transactions to send (0: until --duration or a signal)', { default: 0 }),
  busyPoll: intOption('--busy-poll <us>', 'while transactions await their ACK, poll instead of sleeping for up to this long after the last packet (0: sleep)', { min: 0, max: 1_000_000, default: 200 }),
  connections: intOption('--connections <n>', 'QUIC connections', { min: 1, max: KBX_QUIC_MAX_CONNECTIONS, default: 1 }),
  frames: scaledIntOption('--frames <n>', `xdp io: frames (2 KiB each) of the AF_XDP UMEM, half of them kept in the fill ring (${KBX_QUIC_MIN_FRAMES}..${KBX_QUIC_MAX_FRAMES})`, { min: KBX_QUIC_MIN_FRAMES, max: KBX_QUIC_MAX_FRAMES, default: KBX_QUIC_DEFAULT_FRAMES }),
  streamsPerConnection: scaledIntOption(
    '--streams-per-connection <n>',
    "replace a connection after this many transactions, once all are acked (bounds the server's memory: ngtcp2 0.12 servers keep every stream until the connection closes)",
    { min: 1, max: 0xffffffff, default: KBX_QUIC_STREAMS_PER_CONNECTION },
  ),
  idleTimeout: secondsOption('--idle-timeout <sec>', 'QUIC idle timeout', { default: 30 }),
  keepAlive: secondsOption('--keep-alive <sec>', 'keep-alive PING interval (0: none)', { default: 0 }),
  handshakeTimeout: secondsOption('--handshake-timeout <sec>', 'fail when the handshake takes longer', { default: 5 }),
  reconnect: flagOption('--no-reconnect', 'exit with an error instead of reconnecting when the server closes the connection'),
  // test only: transactions of this size, past the 1232-byte limit, to exercise a receiver's rejection of oversize streams
  unsafeTxSize: intOption('--unsafe-tx-size <bytes>', 'TEST ONLY', { min: 1, max: 65535, hidden: true }),
  ...commonOptions,
})
export type FloodCliOptions = OptionsOf<typeof floodOptions>

export function readTransactions(path: string): Buffer[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UsageError(`--tx-file ${path}: ${(e as Error).message}`)
  }
  const txs = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l, i) => {
      const b = Buffer.from(l, 'base64')
      if (b.length < 1 || b.length > KBX_QUIC_MAX_TX_SIZE)
        throw new UsageError(`--tx-file ${path} line ${i + 1}: ${b.length} bytes; a transaction is 1..${KBX_QUIC_MAX_TX_SIZE} bytes`)
      return b
    })
  if (txs.length === 0) throw new UsageError(`--tx-file ${path}: no transactions`)
  return txs
}

/** The engine's counters as the JSON `interval`/`end` payload (ns → µs/ms). */
export function floodReport(s: FloodStats, latencies: Distribution) {
  return {
    sent: s.tx_sent,
    acked: s.tx_acked,
    unackedAtClose: s.tx_unacked_closed,
    bytesSent: s.tx_bytes_sent,
    bytesAcked: s.tx_bytes_acked,
    packetsSent: s.packets_sent,
    packetsReceived: s.packets_received,
    wireBytesSent: s.wire_bytes_sent,
    wireBytesReceived: s.wire_bytes_received,
    streamFramesLost: s.stream_frames_lost,
    ptoCount: s.pto_count,
    cwnd: s.cwnd,
    bytesInFlight: s.bytes_in_flight,
    rttUs: { min: s.rtt_min_ns / 1000, smoothed: s.rtt_smoothed_ns / 1000, latest: s.rtt_latest_ns / 1000 },
    handshakeUs: s.handshake_ns / 1000,
    handshakes: s.handshakes,
    connectAttempts: s.connect_attempts,
    connectionsOpen: s.connections_open,
    connectionsClosed: s.connections_closed,
    connectionsRotated: s.rotations,
    connectionsRefused: s.connections_refused,
    lastCloseError: s.last_close_error,
    blockedOnMaxStreamsMs: s.blocked_streams_ns / 1e6,
    blockedOnFlowControlMs: s.blocked_flow_ns / 1e6,
    sendErrors: s.send_errors,
    gsoBatches: s.gso_batches,
    txRingFull: s.tx_ring_full,
    ackLatencyUs: summarizeLatency(latencies),
  }
}

async function flood(ctx: ToolContext<FloodCliOptions>): Promise<void> {
  const o = ctx.opts
  const info = interfaceInfo(o.iface)
  const hop = resolveNextHop(o.server.ip, { iface: o.iface })
  const localIp = hop.srcIp || info.ipv4[0]
  if (!localIp) throw new UsageError(`${o.iface} has no IPv4 address`)
  const identity = Identity.create(o.keypair ? readSolanaKeypair(o.keypair) : undefined)
  ctx.onCleanup(() => identity.close())
  const transactions = o.unsafeTxSize
    ? [Buffer.alloc(o.unsafeTxSize, 0xab)]
    : o.txFile
      ? readTransactions(o.txFile)
      : mockTransactions(o.txSize)

  let xsk: XskSocket | undefined
  if (o.io === 'xdp') {
    raiseMemlockLimit()
    // the UMEM and socket are this process's; the engine borrows them (closed after it: cleanups run newest-first)
    const umem = Umem.create({ frameCount: o.frames, frameSize: 2048 })
    ctx.onCleanup(() => umem.close())
    const socket = XskSocket.create({
      umem,
      iface: o.iface,
      queue: o.queue,
      mode: o.mode,
      bindRetries: 20,
      retryDelayMs: 50,
      log: (m) => ctx.log.info(m),
    })
    ctx.onCleanup(() => socket.close())
    xsk = socket
  }
  const f = Flood.create({
    io: o.io,
    streams: o.streams,
    localIp,
    remoteIp: o.server.ip,
    remotePort: o.server.port,
    connections: o.connections,
    idleTimeoutMs: o.idleTimeout * 1000,
    keepAliveMs: o.keepAlive * 1000,
    handshakeTimeoutMs: o.handshakeTimeout * 1000,
    reconnect: o.reconnect,
    rate: o.rate,
    count: o.count,
    busyPollUs: o.busyPoll,
    streamsPerConnection: o.streamsPerConnection,
    alpn: o.alpn,
    identity,
    transactions,
    ...(xsk ? { xsk } : {}),
    srcMac: hop.srcMac,
    dstMac: hop.nextHopMac,
    ...(o.unsafeTxSize ? { unsafeMaxTxSize: o.unsafeTxSize } : {}),
  })
  ctx.onCleanup(() => f.close())
  if (xsk) {
    const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
    obj.setRodata('match_proto', 17)
    obj.setRodata('match_dport_min', f.localPort)
    obj.setRodata('match_dport_max', f.localPort + o.connections - 1)
    obj.setRodata('match_daddr', ipv4NetworkOrder(localIp))
    obj.load()
    const link = obj.program('kbx_xsk_redirect').attachXdp(o.iface, o.mode, (m) => ctx.log.info(m))
    ctx.onCleanup(() => {
      link.close()
      obj.close()
    })
    // this connection's return traffic only: UDP to our address and ports -> the engine's AF_XDP socket
    steerTo(obj, [xsk])
  }
  ctx.json.start({
    iface: o.iface,
    io: o.io,
    server: `${o.server.ip}:${o.server.port}`,
    source: `${localIp}:${f.localPort}`,
    nextHopMac: hop.nextHopMac,
    streams: o.streams,
    alpn: o.alpn,
    connections: o.connections,
    transactions: transactions.length,
    txSize: o.txFile ? undefined : o.txSize,
    frames: xsk ? xsk.umem.frameCount : undefined,
    zeroCopy: xsk ? xsk.zeroCopy : undefined,
    identity: identity.publicKey().toString('hex'),
    rate: o.rate,
    count: o.count,
  })
  // xdp io: where every frame of the UMEM is (frames the engine holds count as user, rx or tx)
  const umemReport = () => (xsk ? { umem: xsk.umem.accounting() } : {})
  const total = new BucketHistogram(KBX_QUIC_LATENCY_LAYOUT)
  const takeLatencies = () => {
    const taken = f.takeLatencies()
    total.add(taken)
    return taken
  }
  const ackedRate = new RateMeter<{ acked: number }>()
  let draining = false
  const stop = await runLoop(
    ctx,
    () => {
      if (f.run(10)) return false
    },
    {
      intervalSec: o.interval,
      durationSec: o.duration,
      onInterval: () => {
        const s = f.stats()
        const ackedPerSec = ackedRate.sample({ acked: s.tx_acked }).rates.acked
        ctx.json.interval({ ...floodReport(s, takeLatencies()), ackedPerSec: Math.round(ackedPerSec), ...umemReport() })
        ctx.status.update(`acked ${s.tx_acked} (${Math.round(ackedPerSec)} tx/s) sent ${s.tx_sent}`)
      },
    },
  )
  if (stop !== 'done') {
    // graceful end: no new streams, give in-flight transactions up to a second to be acknowledged
    f.stopSending()
    draining = true
    const until = performance.now() + 1000
    while (performance.now() < until && !f.run(20)) {
      /* drain */
    }
  }
  takeLatencies()
  const s = f.stats()
  const seconds = Number(ackedRate.elapsedTotalNs()) / 1e9
  ctx.end({ ...floodReport(s, total), seconds, ackedPerSec: Math.round(s.tx_acked / seconds), stoppedBy: stop, drained: draining, ...umemReport() })
  if (s.handshakes === 0 && stop !== 'signal')
    throw new NetError(`no QUIC handshake with ${o.server.ip}:${o.server.port} completed before the run ended`, {
      op: 'QUIC handshake',
      hint: 'is quic-sink (or the validator) running and reachable? see --handshake-timeout and --alpn',
    })
}

export async function main(argv?: readonly string[]): Promise<number> {
  return runTool({
    tool: 'quic-flood',
    description: 'Send Solana-style transactions over QUIC (one per unidirectional stream) and count what is acknowledged',
    ...(argv ? { argv } : {}),
    privileges: true,
    options: floodOptions,
    run: (ctx) => {
      const o = ctx.opts
      if (o.alpn.length < 1 || Buffer.byteLength(o.alpn) > KBX_QUIC_MAX_ALPN_LEN)
        throw new UsageError(`--alpn: 1..${KBX_QUIC_MAX_ALPN_LEN} bytes`)
      if (o.txSize > KBX_QUIC_MAX_TX_SIZE)
        throw new UsageError(`--tx-size ${o.txSize}: a transaction is at most ${KBX_QUIC_MAX_TX_SIZE} bytes (Agave closes the connection otherwise)`)
      return flood(ctx)
    },
  })
}
