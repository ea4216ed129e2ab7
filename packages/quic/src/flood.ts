import { readFileSync } from 'node:fs'
import { BpfObject, raiseMemlockLimit } from '@kbx/bpf'
import { attachOrJoin } from '@kbx/xdp-load'
import {
  choiceOption,
  commonOptions,
  flagOption,
  intOption,
  latencyFileOptions,
  optionTable,
  runLoop,
  runTool,
  scaledIntOption,
  secondsOption,
  stringOption,
  valueOption,
} from '@kbx/cli'
import type { IpPort, OptionsOf, ToolContext } from '@kbx/cli'
import { NetError, UsageError } from '@kbx/errors'
import { bpfObjectPath } from '@kbx/ffi'
import { interfaceInfo, resolveNextHop } from '@kbx/net'
import { LatencyRecording } from '@kbx/report'
import { BucketHistogram, type Distribution, RateMeter, formatLiveLine, summarizeLatency } from '@kbx/stats'
import { Umem, XskSocket, steerTo } from '@kbx/xsk'
import { base58 } from './base58.js'
import { Identity, ipv4NetworkOrder, mockTransactions, readSolanaKeypair } from './engine.js'
import { FloodGroup, workerReports } from './flood-workers.js'
import type { FloodStats, ServerAddress } from './engine.js'
import { ServerLatencies, collectServer, collectString, readServersFile } from './servers.js'
import {
  KBX_QUIC_DEFAULT_FRAMES,
  KBX_QUIC_LATENCY_LAYOUT,
  KBX_QUIC_MAX_ALPN_LEN,
  KBX_QUIC_MAX_CONNECTIONS,
  KBX_QUIC_MAX_FRAMES,
  KBX_QUIC_MAX_IDENTITIES,
  KBX_QUIC_MAX_SERVERS,
  KBX_QUIC_MAX_TOTAL_CONNECTIONS,
  KBX_QUIC_MAX_TX_SIZE,
  KBX_QUIC_MIN_FRAMES,
  KBX_QUIC_MAX_WORKERS,
  KBX_QUIC_STREAMS_PER_CONNECTION,
} from './native.js'
import { floodWorkerShares } from './workers.js'

const DEFAULT_SERVER = '10.0.0.11:8004'

/** quic-flood's options. */
export const floodOptions = optionTable({
  iface: stringOption('--iface <name>', 'interface towards the server', { required: true }),
  server: valueOption<IpPort[]>('--server <ip:port>', 'server (TPU QUIC) address; repeatable: fan-out to each', collectServer, { defaultText: DEFAULT_SERVER }),
  servers: stringOption('--servers <file>', 'servers, one ip:port a line (# comments); re-read on SIGHUP: removed servers drain and close, new ones get connections'),
  fanout: choiceOption('--fanout <mode>', 'with several servers: all (every transaction to every server; --count and --rate per server) or spread (round-robin)', ['all', 'spread'], { default: 'all' }),
  maxServers: intOption('--max-servers <n>', `--servers: servers at once, counting removed ones still draining (default: ${KBX_QUIC_MAX_SERVERS} or what --connections leaves of ${KBX_QUIC_MAX_TOTAL_CONNECTIONS} connections)`, { min: 1, max: KBX_QUIC_MAX_SERVERS }),
  io: choiceOption('--io <io>', 'xdp (AF_XDP rings) or socket (kernel UDP, sendmmsg + GSO)', ['xdp', 'socket'], { default: 'xdp' }),
  streams: choiceOption('--streams <kind>', 'uni (one tx per unidirectional stream, Agave) or bidi', ['uni', 'bidi'], { default: 'uni' }),
  txSize: intOption('--tx-size <bytes>', 'size of generated mock transactions', { min: 1, max: 65535, default: 235 }),
  txFile: stringOption('--tx-file <path>', 'transactions to send round-robin: one base64 transaction per line'),
  keypair: valueOption<string[]>('--keypair <path>', 'Solana keypair JSON (64 numbers) for the client certificate; repeatable: --connections spread over them; a fresh identity when absent', collectString),
  maxConnectionsPerIdentity: intOption('--max-connections-per-identity <n>', "the server's limit of connections per identity (Agave: 8 unstaked, 16 staked): --connections must fit in it", { min: 1, max: KBX_QUIC_MAX_CONNECTIONS }),
  alpn: stringOption('--alpn <proto>', 'TLS ALPN', { default: 'solana-tpu' }),
  rate: scaledIntOption('--rate <tps>', 'transactions per second (0: as fast as the server allows)', { default: 0 }),
  count: scaledIntOption('--count <n>', 'transactions to send (0: until --duration or a signal)', { default: 0 }),
  busyPoll: intOption('--busy-poll <us>', 'while transactions await their ACK, poll instead of sleeping for up to this long after the last packet (0: sleep)', { min: 0, max: 1_000_000, default: 200 }),
  connections: intOption('--connections <n>', 'QUIC connections per server (over all workers: at least --workers)', { min: 1, max: KBX_QUIC_MAX_CONNECTIONS, default: 1 }),
  workers: intOption(
    '--workers <n>',
    'threads, each with its own connections (spread over them, as --count and --rate are) and its own socket: xdp io, an AF_XDP socket on queue --queue + i of --iface; socket io, its own UDP sockets',
    { min: 1, max: KBX_QUIC_MAX_WORKERS, default: 1 },
  ),
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
  ...latencyFileOptions,
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

/** The servers to start with, the engine's server slots, and whether a failure may end the run. */
export function serverPlan(o: Pick<FloodCliOptions, 'server' | 'servers' | 'maxServers' | 'connections' | 'reconnect' | 'keypair' | 'maxConnectionsPerIdentity'>) {
  if (o.server && o.servers) throw new UsageError('--server and --servers: give one of them')
  if (o.maxServers && !o.servers) throw new UsageError('--max-servers goes with --servers')
  const servers = o.servers ? readServersFile(o.servers) : (o.server ?? [collectServer(DEFAULT_SERVER, undefined)[0]!])
  if (servers.length === 0) throw new UsageError(`--servers ${o.servers}: no server listed`)
  servers.forEach((sv, i) => {
    if (servers.findIndex((other) => other.ip === sv.ip && other.port === sv.port) !== i) throw new UsageError(`--server ${sv.ip}:${sv.port} is given twice`)
  })
  const fit = Math.min(KBX_QUIC_MAX_SERVERS, Math.floor(KBX_QUIC_MAX_TOTAL_CONNECTIONS / o.connections))
  const maxServers = o.servers ? (o.maxServers ?? fit) : servers.length
  if (servers.length > maxServers || maxServers > fit)
    throw new UsageError(`${servers.length} servers (${maxServers} slots) x --connections ${o.connections}: at most ${KBX_QUIC_MAX_SERVERS} servers and ${KBX_QUIC_MAX_TOTAL_CONNECTIONS} connections in all`)
  const keepTrying = servers.length > 1 || o.servers !== undefined
  if (keepTrying && !o.reconnect) throw new UsageError('--no-reconnect: a fan-out always reconnects (one server down must not end the run)')
  const identities = o.keypair?.length ?? 1
  if (identities > KBX_QUIC_MAX_IDENTITIES) throw new UsageError(`--keypair given ${identities} times: at most ${KBX_QUIC_MAX_IDENTITIES}`)
  if (o.maxConnectionsPerIdentity && o.connections > identities * o.maxConnectionsPerIdentity)
    throw new UsageError(`--connections ${o.connections} over ${identities} identities: more than --max-connections-per-identity ${o.maxConnectionsPerIdentity} each (give more --keypair)`)
  return { servers, maxServers, keepTrying }
}

/** SIGHUP: re-reads the servers file and hands the set to apply; a bad file is logged and changes nothing. */
function reloadOnHangup(ctx: ToolContext<FloodCliOptions>, path: string, apply: (servers: IpPort[]) => void): void {
  const onHangup = () => {
    try {
      const servers = readServersFile(path)
      apply(servers)
      ctx.log.info({ servers: servers.map((sv) => `${sv.ip}:${sv.port}`) }, `SIGHUP: ${path} re-read, ${servers.length} servers`)
    } catch (err) {
      ctx.log.error({ err }, `SIGHUP: ${path} not applied, the servers stay as they were`)
    }
  }
  process.on('SIGHUP', onHangup)
  ctx.onCleanup(() => {
    process.off('SIGHUP', onHangup)
  })
}

/**
 * xdp io: a UMEM and an AF_XDP socket per worker, worker i on queue --queue + i, this process's; the engines
 * borrow them (closed after them: cleanups run newest-first).
 */
function openXsks(ctx: ToolContext<FloodCliOptions>): XskSocket[] {
  raiseMemlockLimit()
  return Array.from({ length: ctx.opts.workers }, (_, i) => {
    const umem = Umem.create({ frameCount: ctx.opts.frames, frameSize: 2048 })
    ctx.onCleanup(() => umem.close())
    const socket = XskSocket.create({
      umem,
      iface: ctx.opts.iface,
      queue: ctx.opts.queue + i,
      mode: ctx.opts.mode,
      bindRetries: 20,
      retryDelayMs: 50,
      log: (m) => ctx.log.info(m),
    })
    ctx.onCleanup(() => socket.close())
    return socket
  })
}

/**
 * xdp io: xdp_xsk_redirect sends UDP to our address and ports firstPort..firstPort+ports-1 (every worker's)
 * to the AF_XDP socket of the queue it arrived on: an XSKMAP redirect to a socket bound to another queue
 * fails, and which queue a connection's return traffic takes is the NIC's hash (veth: the sender's TX
 * queue). A worker hands a datagram for another worker's ports to that worker (kbx_quic.h "Workers").
 */
function steerReturnTraffic(ctx: ToolContext<FloodCliOptions>, xsks: XskSocket[], localIp: string, firstPort: number, ports: number): void {
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  obj.setRodata('match_proto', 17)
  obj.setRodata('match_dport_min', firstPort)
  // every connection slot of every server of every worker has its own local port: the range steers all return traffic
  obj.setRodata('match_dport_max', firstPort + ports - 1)
  obj.setRodata('match_daddr', ipv4NetworkOrder(localIp))
  obj.load()
  // Its own bpf_link, or one more program of kbx's dispatcher when the interface carries one (so two
  // quic-floods on different ports, or fix-tcp beside it, share the interface).
  const link = attachOrJoin(obj, 'kbx_xsk_redirect', ctx.opts.iface, ctx.opts.mode, { tool: 'quic-flood', log: (m) => ctx.log.info(m) })
  ctx.onCleanup(() => {
    link.detach()
    obj.close()
  })
  steerTo(obj, xsks)
}

/** xdp io: queues --queue .. --queue + workers - 1 must exist (a usage error before anything is attached). */
export function checkWorkerQueues(o: { iface: string; queue: number; workers: number }, rxQueues: number): void {
  if (o.queue + o.workers > rxQueues)
    throw new UsageError(
      `--workers ${o.workers} from --queue ${o.queue}: ${o.iface} has ${rxQueues} RX queue${rxQueues === 1 ? '' : 's'}, queues ${o.queue}..${o.queue + o.workers - 1} are needed (one AF_XDP socket per worker; scripts/setup_net.sh up quic --queues N makes a bed with more)`,
    )
}

/**
 * The flood's report of one instant, read in one pause of the workers: the merged counters, the latencies
 * (those of the interval; runLatencies gathers the run's), each server's and each worker's entry, and
 * (xdp io) where every frame of each worker's UMEM is (read in the pause: the engines use the UMEMs).
 */
function floodReporter(group: FloodGroup, xsks: XskSocket[] | undefined, identityKeys: string[]) {
  const runLatencies = new BucketHistogram(KBX_QUIC_LATENCY_LAYOUT)
  const serverLatencies = new ServerLatencies()
  const umemReport = () => (xsks ? { umem: xsks.length === 1 ? xsks[0]!.umem.accounting() : xsks.map((x) => x.umem.accounting()) } : {})
  const take = (scope: 'interval' | 'total') => {
    const taken = group.take(umemReport)
    runLatencies.add(taken.latencies)
    const servers = serverLatencies.reports(taken.servers, identityKeys, scope)
    return { ...taken, servers, workers: workerReports(group, taken.perWorker, xsks), umem: taken.also }
  }
  return Object.assign(take, { runLatencies })
}

async function flood(ctx: ToolContext<FloodCliOptions>): Promise<void> {
  const o = ctx.opts
  const plan = serverPlan(o)
  const recording = LatencyRecording.open(ctx, { series: [{ name: 'ack', label: 'send→ack' }], rateUnit: 'acked tx/s', latencyLabel: 'send→ack latency' })
  const shares = floodWorkerShares(o)
  const info = interfaceInfo(o.iface)
  if (o.io === 'xdp') checkWorkerQueues(o, info.rxQueues)
  const hop = resolveNextHop(plan.servers[0]!.ip, { iface: o.iface })
  const localIp = hop.srcIp || info.ipv4[0]
  if (!localIp) throw new UsageError(`${o.iface} has no IPv4 address`)
  // each server's next hop (they may sit behind different routers)
  const addresses = (servers: IpPort[]): ServerAddress[] =>
    servers.map((sv) => ({ ...sv, dstMac: resolveNextHop(sv.ip, { iface: o.iface }).nextHopMac }))
  const identities = (o.keypair ?? [undefined]).map((path) => Identity.create(path ? readSolanaKeypair(path) : undefined))
  ctx.onCleanup(() => identities.forEach((i) => i.close()))
  const identityKeys = identities.map((i) => base58(i.publicKey()))
  const transactions = o.unsafeTxSize
    ? [Buffer.alloc(o.unsafeTxSize, 0xab)]
    : o.txFile
      ? readTransactions(o.txFile)
      : mockTransactions(o.txSize)

  const xsks = o.io === 'xdp' ? openXsks(ctx) : undefined
  const group = FloodGroup.create({
    io: o.io,
    streams: o.streams,
    localIp,
    servers: addresses(plan.servers),
    fanout: o.fanout,
    maxServers: plan.maxServers,
    keepTrying: plan.keepTrying,
    shares,
    ...(o.maxConnectionsPerIdentity ? { maxConnectionsPerIdentity: o.maxConnectionsPerIdentity } : {}),
    idleTimeoutMs: o.idleTimeout * 1000,
    keepAliveMs: o.keepAlive * 1000,
    handshakeTimeoutMs: o.handshakeTimeout * 1000,
    reconnect: o.reconnect,
    busyPollUs: o.busyPoll,
    streamsPerConnection: o.streamsPerConnection,
    alpn: o.alpn,
    identities,
    transactions,
    ...(xsks ? { xsks } : {}),
    srcMac: hop.srcMac,
    dstMac: hop.nextHopMac,
    ...(o.unsafeTxSize ? { unsafeMaxTxSize: o.unsafeTxSize } : {}),
  })
  ctx.onCleanup(() => group.close())
  if (xsks) steerReturnTraffic(ctx, xsks, localIp, group.localPort, group.portCount)
  ctx.json.start({
    iface: o.iface,
    io: o.io,
    server: `${plan.servers[0]!.ip}:${plan.servers[0]!.port}`,
    servers: plan.servers.map((sv) => `${sv.ip}:${sv.port}`),
    fanout: o.fanout,
    source: `${localIp}:${group.localPort}`,
    localPorts: group.portCount,
    nextHopMac: hop.nextHopMac,
    streams: o.streams,
    alpn: o.alpn,
    connections: o.connections,
    workers: shares.map((share, i) => ({ worker: i, ...(xsks ? { queue: xsks[i]!.queue } : {}), connections: share.connections, count: share.count, rate: share.rate })),
    transactions: transactions.length,
    txSize: o.txFile ? undefined : o.txSize,
    frames: xsks ? xsks[0]!.umem.frameCount : undefined,
    zeroCopy: xsks ? xsks.every((x) => x.zeroCopy) : undefined,
    identity: identities[0]!.publicKey().toString('hex'),
    identities: identityKeys,
    rate: o.rate,
    count: o.count,
  })
  const take = floodReporter(group, xsks, identityKeys)
  if (o.servers) reloadOnHangup(ctx, o.servers, (servers) => group.setServers(addresses(servers)))
  const ackedRate = new RateMeter<{ acked: number }>()
  let draining = false
  recording.begin()
  group.start()
  const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 10))
  const stop = await runLoop(
    ctx,
    () => {
      if (group.done()) return false
    },
    {
      intervalSec: o.interval,
      durationSec: o.duration,
      wait: tick,
      onInterval: (loopTick) => {
        const { total: s, latencies, servers, workers, umem } = take('interval')
        const ackedPerSec = ackedRate.sample({ acked: s.tx_acked }).rates.acked
        ctx.json.interval({ ...floodReport(s, latencies), ackedPerSec: Math.round(ackedPerSec), servers, workers, ...umem })
        recording.interval({ ack: latencies }, ackedPerSec)
        if (ctx.status.enabled)
          ctx.status.update(formatLiveLine({ tool: 'quic-flood', elapsedSec: Number(loopTick.elapsedNs) / 1e9, rate: { value: ackedPerSec, unit: 'acked tx/s' }, totals: { acked: s.tx_acked, sent: s.tx_sent }, latency: { label: 'ack', ...summarizeLatency(take.runLatencies) } }))
      },
    },
  )
  if (stop !== 'done') {
    // graceful end: no new streams, give in-flight transactions up to a second to be acknowledged
    group.stopSending()
    draining = true
    const until = performance.now() + 1000
    while (performance.now() < until && !group.done()) await tick()
  }
  group.stopThreads()
  const { total: s, latencies, servers, workers, umem } = take('total')
  recording.interval({ ack: latencies })
  const seconds = Number(ackedRate.elapsedTotalNs()) / 1e9
  for (const file of recording.finish()) ctx.log.info(`wrote ${file}`)
  ctx.end({ ...floodReport(s, take.runLatencies), seconds, ackedPerSec: Math.round(s.tx_acked / seconds), stoppedBy: stop, drained: draining, servers, workers, ...umem })
  if (s.handshakes === 0 && stop !== 'signal')
    throw new NetError(`no QUIC handshake with ${servers.map((sv) => sv.server).join(', ')} completed before the run ended`, {
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
    examples: [
      'sudo quic-flood --iface veth0 --server 10.0.0.11:8004 --duration 5 | jq -c \'select(.event=="end") | .data | {acked, ackedPerSec}\'',
      'sudo quic-flood --iface veth0 --io socket --rate 50000 --duration 10',
      'sudo quic-flood --iface eth0 --servers leaders.txt --fanout all --keypair a.json --keypair b.json --connections 4',
    ],
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
