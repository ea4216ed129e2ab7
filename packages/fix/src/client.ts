// `fix-tcp`: one FIX initiator session, orders out, ExecutionReports matched, JSON stats.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { Option, parseChoice, parseIpPortOption, parseIntOption, parseInterfaceName, parseScaledInt, parseSeconds } from '@kbx/cli'
import type { Command, IpPort, ToolContext } from '@kbx/cli'
import { NetError, UsageError } from '@kbx/errors'
import { KBX_FIX_TIMING_NAMES, KBX_FIX_TIMING_RING } from '@kbx/ffi'
import { interfaceInfo } from '@kbx/net'
import { LatencyHistogram } from '@kbx/stats'
import { parsePrice } from './codec.js'
import { OrderFlow } from './orders.js'
import { FixSession } from './session.js'
import type { SessionEvent } from './session.js'
import { FileSeqStore } from './store.js'
import { XdpTransport } from './xdp-transport.js'
import type { ReflexArm } from './reflex.js'

export const TOOL = 'fix-tcp'
export const DEFAULT_STORE_DIR = '/var/tmp/kbx-fix'

export interface FixTcpOptions {
  iface: string
  connect: IpPort
  sender: string
  target: string
  orders?: number
  rate?: number
  duration?: number
  interval: number
  io: 'xdp' | 'socket'
  fixVersion: '4.4' | '4.2'
  heartbeat: number
  reset?: boolean
  store?: string
  symbol: string
  side: 'buy' | 'sell'
  qty: number
  price: string
  linger: number
  testGapAt?: number
  testDropSegment?: number
  xdpMode: 'native' | 'skb' | 'auto'
  queue: number
  busyPoll?: boolean
  /** Default true (--no-reflex: false): one order at a time over --io xdp, the native reflex sends the next order. */
  reflex: boolean
}

export function buildFixTcp(program: Command): void {
  program
    .option('--iface <name>', 'interface towards the gateway (source address; AF_XDP interface for --io xdp)', (v) => parseInterfaceName(v, '--iface'), 'fix0')
    .option('--connect <ip:port>', 'FIX gateway (acceptor) address', parseIpPortOption('--connect'), { ip: '10.0.3.2', port: 9878 })
    .option('--sender <id>', 'SenderCompID (49)', 'CLIENT1')
    .option('--target <id>', 'TargetCompID (56)', 'EXCH')
    .option('--orders <n>', 'NewOrderSingles to send (alone: one at a time, each after the previous ack)', parseScaledInt('--orders', { min: 0 }))
    .option('--rate <r>', 'orders per second (paced, without waiting for acks)', parseScaledInt('--rate', { min: 1 }))
    .option('--duration <s>', 'stop (clean Logout) after this long', parseSeconds('--duration', { min: 0 }))
    .option('--interval <s>', 'seconds between interval stats', parseSeconds('--interval', { min: 0 }), 1)
    .addOption(new Option('--io <kind>', 'transport: xdp (userspace TCP on AF_XDP) or socket (kernel TCP)').choices(['xdp', 'socket']).default('xdp'))
    .option('--fix-version <v>', 'FIX.4.4 or FIX.4.2', parseChoice('--fix-version', ['4.4', '4.2'] as const), '4.4')
    .option('--heartbeat <s>', 'HeartBtInt (108) proposed on Logon, seconds', parseIntOption('--heartbeat', { min: 1, max: 3600 }), 30)
    .option('--reset', 'send ResetSeqNumFlag(141)=Y on Logon: both sides start again from 1')
    .option('--store <path>', `sequence-number store (default ${DEFAULT_STORE_DIR}/SENDER-TARGET.json)`)
    .option('--symbol <s>', 'Symbol (55)', 'KBX')
    .addOption(new Option('--side <side>', 'Side (54)').choices(['buy', 'sell']).default('buy'))
    .option('--qty <n>', 'OrderQty (38)', parseIntOption('--qty', { min: 1 }), 100)
    .option('--price <p>', 'limit Price (44)', '100.25')
    .option('--linger <s>', 'stay logged on (idle, heartbeats only) this long after the last order, before Logout', parseSeconds('--linger', { min: 0 }), 0)
    .addOption(new Option('--xdp-mode <mode>', 'XDP attach mode for --io xdp').choices(['native', 'skb', 'auto']).default('auto'))
    .option('--queue <n>', 'RX queue of --iface for --io xdp', parseIntOption('--queue', { min: 0 }), 0)
    .option('--busy-poll', '--io xdp: spin on the AF_XDP RX ring instead of sleeping in poll() when idle (lowest latency; keeps one core at 100%)')
    .option('--no-reflex', '--io xdp, one order at a time: send each next order from the TypeScript session instead of the native reflex (C answers the ExecutionReport in the step that received it)')
    .addOption(new Option('--test-drop-segment <n>', 'test hook (--io xdp): drop our Nth data segment once').argParser(parseIntOption('--test-drop-segment', { min: 1 })).hideHelp())
    .addOption(new Option('--test-gap-at <seq>', 'test hook: skip this outgoing MsgSeqNum once').argParser(parseIntOption('--test-gap-at', { min: 1 })).hideHelp())
}

export async function runFixTcp(ctx: ToolContext): Promise<void> {
  const opts = ctx.opts as unknown as FixTcpOptions
  const price = parsePrice(Buffer.from(opts.price), 0, Buffer.byteLength(opts.price))
  if (!(price > 0)) throw new UsageError(`--price: expected a positive decimal price with at most 8 decimals, got ${JSON.stringify(opts.price)}`)
  if (opts.busyPoll === true && opts.io !== 'xdp') throw new UsageError('--busy-poll: only with --io xdp (the kernel socket is event-driven)')
  const info = interfaceInfo(opts.iface)
  const localAddress = info.ipv4[0]
  if (localAddress === undefined) throw new NetError(`interface ${opts.iface} has no IPv4 address`, { op: 'interface address', hint: `ip addr add … dev ${opts.iface}` })

  const store = new FileSeqStore(opts.store ?? join(DEFAULT_STORE_DIR, `${opts.sender}-${opts.target}.json`))
  ctx.onCleanup(() => store.close())
  let socket: Socket | undefined
  let xdp: XdpTransport | undefined
  let closedReason: string | undefined
  let wake: (() => void) | undefined
  const waitForChange = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined
        resolve()
      }, ms)
      wake = () => {
        clearTimeout(timer)
        wake = undefined
        resolve()
      }
    })
  const notify = () => wake?.()

  const sessionEvents: Record<string, number> = {}
  const session = new FixSession({
    role: 'initiator',
    senderCompId: opts.sender,
    targetCompId: opts.target,
    beginString: `FIX.${opts.fixVersion}`,
    heartBtInt: opts.heartbeat,
    resetOnLogon: opts.reset === true,
    store,
    saveOnReceive: false, // saved below once the replies (the next order) are on the wire
    send: (bytes) => {
      if (xdp !== undefined) {
        if (!xdp.write(bytes)) ctx.log.warn({ bytes: bytes.length }, 'AF_XDP send staging buffer full: message dropped')
      } else socket?.write(Buffer.from(bytes))
    },
    onApp: (msg) => flow.onApp(msg),
    onEvent: (e: SessionEvent) => {
      sessionEvents[e.event] = (sessionEvents[e.event] ?? 0) + 1
      const { event, ...data } = e
      ctx.json.emit(event, data)
      if (event === 'logon') ctx.log.info(data, 'logged on')
      notify()
    },
    onClose: (reason) => {
      closedReason = reason
      socket?.end()
      notify()
    },
  })
  if (opts.testGapAt !== undefined) session.skipOutgoingSeq = opts.testGapAt
  const flow = new OrderFlow(session, { symbol: opts.symbol, side: opts.side === 'buy' ? '1' : '2', qty: opts.qty, price })

  let local: string
  let peerGone = false
  const onPeerGone = (reason: string) => {
    if (peerGone) return
    peerGone = true
    session.disconnected()
    closedReason ??= reason
    notify()
  }
  if (opts.io === 'xdp') {
    xdp = await XdpTransport.open({
      iface: opts.iface,
      remoteIp: opts.connect.ip,
      remotePort: opts.connect.port,
      queue: opts.queue,
      mode: opts.xdpMode,
      busyPoll: opts.busyPoll === true,
      ...(opts.testDropSegment === undefined ? {} : { dropTxNth: opts.testDropSegment }),
      log: (msg) => ctx.log.info(msg),
    })
    const transport = xdp
    ctx.onCleanup(() => transport.close())
    await handshake(transport, opts.connect, ctx)
    local = `${transport.localIp}:${transport.localPort}`
  } else {
    const s = await openSocket(opts.connect, localAddress, ctx)
    socket = s
    ctx.onCleanup(() => {
      s.destroy()
    })
    s.on('data', (chunk: Buffer) => {
      s.cork()
      session.receive(chunk)
      pump()
      s.uncork()
      store.save()
      notify()
    })
    s.on('close', () => onPeerGone('connection closed by peer'))
    s.on('error', (err) => ctx.log.warn({ err: err.message }, 'socket error'))
    local = `${localAddress}:${s.localPort}`
  }
  const limit = opts.orders ?? (opts.rate === undefined ? 0 : Infinity)
  const oneAtATime = opts.rate === undefined
  // --io xdp internal timing (native rings, drained in bulk): whole run and current interval.
  const timingNames = KBX_FIX_TIMING_NAMES
  const internal = Object.fromEntries(timingNames.map((n) => [n, new LatencyHistogram()])) as Record<(typeof timingNames)[number], LatencyHistogram>
  const intervalInternal = Object.fromEntries(timingNames.map((n) => [n, new LatencyHistogram()])) as typeof internal
  const drainTimings = () => {
    if (xdp === undefined || xdp.closed) return
    const samples = xdp.drainTimings()
    for (const name of timingNames) {
      internal[name].recordMany(samples[name])
      intervalInternal[name].recordMany(samples[name])
    }
  }
  /**
   * --io xdp, one order at a time: the native reflex, armed before each step with the session's current
   * numbers, answers the outstanding order's ExecutionReport with the next order in the step that received
   * it; anything unusual (admin message, gap, duplicate, framing error, TCP unable to send at once) is left
   * to the session. Armed only while the session is active, in sequence and has orders left to send.
   */
  const reflexOn = xdp !== undefined && oneAtATime && opts.reflex
  const reflexArm = (): ReflexArm | undefined => {
    if (!reflexOn || !session.active || !session.inSequence || session.skipOutgoingSeq !== 0 || flow.counters.sent >= limit || ctx.signal.aborted) return undefined
    if (durationMs > 0 && Date.now() - started >= durationMs) return undefined
    const clOrdId = flow.soleOutstanding
    if (clOrdId === undefined) return undefined
    return { clOrdId, expectSeq: store.nextTargetSeq, nextSeq: store.nextSenderSeq, nextClOrdId: store.nextClOrdId }
  }
  /** The order the reflex sent, recorded before the session reads the ExecutionReport it answered. */
  const adoptReflexOrder = () => {
    const o = xdp!.reflexOrder()
    session.adoptSent(o.seq, 'D', o.body, o.sendingTime)
    flow.adopt(o.clOrdId, o.sentNs)
  }
  /**
   * --io xdp: one native batch (send, receive, timers); received bytes straight to the session. When they
   * make the session answer (the next order, a Heartbeat), the answer goes out in a batch call right away,
   * not after an event-loop turn.
   */
  const xdpStep = (timeoutMs: number) => {
    let rx = xdp!.step(timeoutMs, reflexArm())
    const received = rx.length > 0
    for (let rounds = 0; ; rounds++) {
      if (xdp!.reflexSent) adoptReflexOrder()
      if (rx.length === 0) break
      session.receive(rx)
      pump()
      notify()
      if (xdp!.pendingBytes === 0 || rounds === 64) break
      rx = xdp!.step(0, reflexArm())
    }
    if (received) store.save()
    if (xdp!.timingsWaiting > KBX_FIX_TIMING_RING / 2) drainTimings()
    if (xdp!.closed && session.state !== 'closed') onPeerGone(`TCP connection ${String(xdp!.stats()['closeReason'])}`)
  }
  const tcpStats = () => (xdp !== undefined ? xdp.stats() : { io: 'socket', note: 'kernel TCP: retransmits/dup ACKs are the kernel\'s (see nstat)' })
  /**
   * --io xdp: internalUs (RX descriptors taken → reply submitted to TX), of which internalNativeUs in C
   * (TCP, copies, checksums) and internalKickUs in the TX call (TX ring + sendto); the rest is TS and FFI.
   */
  const internalStats = (h: typeof internal) =>
    xdp === undefined
      ? {}
      : {
          internalUs: h.response.summary(),
          internalNativeUs: h.native.summary(),
          internalKickUs: h.kick.summary(),
          internalReflexUs: h.reflex.summary(),
          internalReflexKickUs: h.reflexKick.summary(),
        }
  /** --io xdp: what the native reflex framed and did (counts since start). */
  const reflexStats = () => {
    if (xdp === undefined || xdp.closed) return lastReflexStats
    const c = xdp.reflexCounters()
    lastReflexStats = { enabled: reflexOn, sent: c.sent, deferred: c.deferred, disarmed: c.disarmed, armed: c.armed, messages: c.messages, badChecksum: c.bad_checksum, badBodyLength: c.bad_body_length, badHeader: c.bad_header, garbageBytes: c.garbage_bytes }
    return lastReflexStats
  }
  let lastReflexStats: Record<string, number | boolean> | undefined

  if (xdp !== undefined && reflexOn) xdp.configureReflex(flow.reflexTemplate(`FIX.${opts.fixVersion}`, opts.sender, opts.target))
  const started = Date.now()
  ctx.json.start({ io: opts.io, iface: opts.iface, local, connect: `${opts.connect.ip}:${opts.connect.port}`, sender: opts.sender, target: opts.target, beginString: `FIX.${opts.fixVersion}`, store: store.path, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq, ...(xdp !== undefined ? { xdp: { mode: xdp.xdpMode, linkId: xdp.xdpLinkId, progId: xdp.xdpProgId, zeroCopy: xdp.zeroCopy } } : {}) })
  session.start()

  let startedOrdersNs = 0n
  let lastOrderDoneMs = 0
  function pump(): void {
    if (!session.active || flow.counters.sent >= limit) return
    if (startedOrdersNs === 0n) startedOrdersNs = process.hrtime.bigint()
    if (oneAtATime) {
      if (flow.outstanding === 0) flow.send()
      return
    }
    const due = Math.min(limit, Math.floor((Number(process.hrtime.bigint() - startedOrdersNs) / 1e9) * opts.rate!) + 1)
    while (flow.counters.sent < due) flow.send()
  }

  let nextInterval = started + opts.interval * 1000
  const durationMs = (opts.duration ?? 0) * 1000
  let stoppedBy = 'done'
  let lastSnapshot = { sent: 0, acked: 0, filled: 0, rejected: 0 }
  const emitInterval = (now: number) => {
    drainTimings()
    const c = flow.counters
    ctx.json.interval({
      elapsedSec: (now - started) / 1000,
      orders: { ...c, outstanding: flow.outstanding },
      perSec: { sent: (c.sent - lastSnapshot.sent) / opts.interval, acked: (c.acked - lastSnapshot.acked) / opts.interval },
      latencyUs: flow.intervalLatency.summary(),
      ...internalStats(intervalInternal),
      ...(xdp === undefined ? {} : { reflex: reflexStats() }),
      session: { state: session.state, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq },
      tcp: tcpStats(),
    })
    lastSnapshot = { sent: c.sent, acked: c.acked, filled: c.filled, rejected: c.rejected }
    flow.intervalLatency.reset()
    for (const h of Object.values(intervalInternal)) h.reset()
  }

  while (session.state !== 'closed') {
    const now = Date.now()
    if (ctx.signal.aborted && session.state === 'active') {
      stoppedBy = 'signal'
      session.logout()
    } else if (durationMs > 0 && now - started >= durationMs && session.state === 'active') {
      stoppedBy = 'duration'
      session.logout()
    } else if (session.state === 'active' && limit !== Infinity && flow.counters.sent >= limit && flow.outstanding === 0) {
      if (lastOrderDoneMs === 0) lastOrderDoneMs = now
      if (now - lastOrderDoneMs >= opts.linger * 1000) session.logout()
    } else if (ctx.signal.aborted && session.state !== 'logout-sent') {
      stoppedBy = 'signal'
      break
    }
    session.tick()
    socket?.cork()
    pump()
    socket?.uncork()
    if (opts.interval > 0 && now >= nextInterval) {
      emitInterval(now)
      nextInterval += opts.interval * 1000
      if (nextInterval <= now) nextInterval = now + opts.interval * 1000
    }
    if ((session.state as string) === 'closed') break
    if (xdp !== undefined) {
      // Spin on the native batch call (idle, it waits up to 1 ms for frames: asleep in poll(), or spinning
      // on the RX ring with --busy-poll), yielding to the event loop between batches so signals and timers
      // run; housekeeping above about once per ms.
      const until = Date.now() + 1
      do {
        xdpStep(xdp.pendingBytes > 0 ? 0 : 1)
        await new Promise<void>((resolve) => setImmediate(resolve))
      } while (Date.now() < until && (session.state as string) !== 'closed' && !ctx.signal.aborted)
    } else {
      await waitForChange(oneAtATime ? 100 : 1)
    }
  }
  socket?.end()
  drainTimings()
  if (xdp !== undefined) reflexStats()
  if (xdp !== undefined) await closeXdp(xdp, ctx)
  store.save()
  const c = flow.counters
  const ordersSec = startedOrdersNs === 0n ? 0 : Number(process.hrtime.bigint() - startedOrdersNs) / 1e9
  ctx.end({
    stoppedBy,
    closed: closedReason ?? 'logout',
    io: opts.io,
    orders: { ...c, outstanding: flow.outstanding },
    ordersPerSec: ordersSec > 0 ? Math.round(c.acked / ordersSec) : 0,
    latencyUs: flow.latency.summary(),
    ...internalStats(internal),
    ...(lastReflexStats === undefined ? {} : { reflex: lastReflexStats }),
    session: { ...session.counters, events: sessionEvents, nextSenderSeq: store.nextSenderSeq, nextTargetSeq: store.nextTargetSeq },
    parser: session.parser.counters,
    tcp: tcpStats(),
  })
  if (closedReason !== undefined && closedReason !== 'logout' && stoppedBy !== 'signal') {
    throw new NetError(`FIX session ended: ${closedReason}`, { op: 'fix session' })
  }
}

/** Active open over the userspace TCP: SYN, SYN-ACK, ACK (SYN retransmitted on timeout). */
async function handshake(xdp: XdpTransport, to: IpPort, ctx: ToolContext): Promise<void> {
  xdp.connect()
  const deadline = Date.now() + 15_000
  while (!xdp.established) {
    xdp.step(1)
    if (xdp.closed) {
      const reason = String(xdp.stats()['closeReason'])
      throw new NetError(`connect to ${to.ip}:${to.port} over AF_XDP failed: ${reason}`, { op: 'connect (userspace TCP)', hint: 'is the acceptor running (fix-acceptor in namespace exch)?' })
    }
    if (Date.now() > deadline || ctx.signal.aborted) {
      xdp.abort()
      xdp.step(0)
      throw new NetError(`connect to ${to.ip}:${to.port} over AF_XDP timed out`, { op: 'connect (userspace TCP)', hint: 'is the next hop reachable and its MAC right (ip neigh)?' })
    }
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  ctx.log.debug({ local: `${xdp.localIp}:${xdp.localPort}`, zeroCopy: xdp.zeroCopy, xdpMode: xdp.xdpMode }, 'connected (userspace TCP over AF_XDP)')
}

/** FIN (unless already sent) and both sides' FINs acknowledged, or 3 s. */
async function closeXdp(xdp: XdpTransport, ctx: ToolContext): Promise<void> {
  const deadline = Date.now() + 3000
  while (!xdp.closed && xdp.pendingBytes > 0 && Date.now() < deadline) xdp.step(0)
  if (!xdp.closed) xdp.shutdown()
  while (!xdp.closed && xdp.state !== 'time-wait' && Date.now() < deadline) {
    xdp.step(1)
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  if (!xdp.closed && xdp.state !== 'time-wait') {
    ctx.log.warn({ state: xdp.state }, 'TCP close did not complete: sending RST')
    xdp.abort()
    xdp.step(0)
  }
}

function openSocket(to: IpPort, localAddress: string, ctx: ToolContext): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: to.ip, port: to.port, localAddress, noDelay: true })
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new NetError(`connect to ${to.ip}:${to.port} failed: ${err.message}`, { op: 'connect', hint: 'is the acceptor running (fix-acceptor in namespace exch)?' }))
    }
    socket.once('error', onError)
    socket.once('connect', () => {
      socket.off('error', onError)
      ctx.log.debug({ local: `${socket.localAddress}:${socket.localPort}` }, 'connected')
      resolve(socket)
    })
  })
}

