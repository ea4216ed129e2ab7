// fix-tcp --io xdp: the FIX session over the userspace TCP on AF_XDP (xdp-connection.ts), one native batch call
// per turn; a lost connection is made again on the same socket, UMEM and steering program. Also the internal
// timings the native loop records and the native reflex's counters.
import { NetError } from '@kbx/errors'
import { LatencyHistogram } from '@kbx/stats'
import { KBX_FIX_REFLEX_STAGE_NAMES, KBX_FIX_TIMING_NAMES, KBX_FIX_TIMING_RING } from './native.js'
import type { ReflexArm, ReflexTemplate } from './reflex.js'
import type { FixTransport, TransportContext, TransportHost, TransportOptions } from './transport.js'
import { XdpConnection } from './xdp-connection.js'

const timingNames = KBX_FIX_TIMING_NAMES
type Timings = Record<(typeof timingNames)[number], LatencyHistogram>
const timings = (): Timings => Object.fromEntries(timingNames.map((n) => [n, new LatencyHistogram()])) as Timings

const stageRing = (stage: string) => `reflex${stage[0]!.toUpperCase()}${stage.slice(1)}` as (typeof timingNames)[number]

/** ns, to the ns: sub-µs stages would vanish in µs summaries. */
function nsSummary(h: LatencyHistogram): { count: number; p50: number; p90: number; p99: number; mean: number } {
  return { count: h.count, p50: h.percentileNs(50), p90: h.percentileNs(90), p99: h.percentileNs(99), mean: Math.round(h.meanNs) }
}

/**
 * The reflex's internal time by stage (kbx_fix.h: clock reads, TCP input and copy-out, FIX framing, the
 * order built, TCP output, UMEM frame and TX descriptor), disjoint, and their sum per sample (total); only
 * the samples whose trigger arrived in the step that answered it.
 */
function breakdown(h: Timings): Record<string, ReturnType<typeof nsSummary>> {
  return { ...Object.fromEntries(KBX_FIX_REFLEX_STAGE_NAMES.map((stage) => [stage, nsSummary(h[stageRing(stage)])])), total: nsSummary(h.reflexWindow) }
}

/** Native steps per turn at most while each leaves bytes to send (the session answering what arrived). */
const ROUNDS_PER_TURN = 64

export class XdpTransport implements FixTransport {
  readonly io = 'xdp'
  readonly waitsForEvents = false
  /** Connections made so far (the first included). */
  connections = 0
  /** The native reflex sends each next order (configured with a template). */
  reflexOn: boolean
  readonly internal = timings()
  readonly intervalInternal = timings()
  lastReflexStats: Record<string, number | boolean> | undefined

  private constructor(
    readonly conn: XdpConnection,
    private readonly o: TransportOptions,
    private readonly host: TransportHost,
    private readonly ctx: TransportContext,
  ) {
    this.reflexOn = o.reflex !== undefined
  }

  static async open(o: TransportOptions, host: TransportHost, ctx: TransportContext): Promise<XdpTransport> {
    const conn = await XdpConnection.open({ ...o.xdp, remoteIp: o.connect.ip, remotePort: o.connect.port })
    ctx.onCleanup(() => conn.close())
    const t = new XdpTransport(conn, o, host, ctx)
    conn.connect()
    await t.established(15_000)
    t.connections++
    if (o.reflex !== undefined) conn.configureReflex(o.reflex)
    return t
  }

  useReflex(template: ReflexTemplate | undefined): boolean {
    if (template !== undefined) this.conn.configureReflex(template)
    this.reflexOn = template !== undefined
    return true
  }

  get local(): string {
    return `${this.conn.localIp}:${this.conn.localPort}`
  }

  startFields(): Record<string, unknown> {
    const c = this.conn
    return { xdp: { mode: c.xdpMode, linkId: c.xdpLinkId, progId: c.xdpProgId, zeroCopy: c.zeroCopy } }
  }

  write(bytes: Buffer): boolean {
    return this.conn.write(bytes)
  }

  get room(): number {
    return this.conn.room
  }

  batch(fn: () => void): void {
    fn()
  }

  /**
   * Orders due sent, then one native batch (send, receive, timers; idle, it waits for frames up to 1 ms or
   * until the next paced order is due, to the microsecond: asleep in ppoll(), or spinning on the RX ring with
   * --busy-poll); received bytes straight to the session. When they make the session answer (the next order,
   * a Heartbeat), the answer goes out in a batch call right away, not after an event-loop turn; so does an
   * order that fell due during the wait. The order the reflex sent is handed up before the session reads the
   * ExecutionReport it answered.
   */
  turn(): void {
    this.host.paceDue()
    this.exchange()
    if (this.host.paceDue()) this.exchange()
  }

  private exchange(): void {
    const conn = this.conn
    conn.wakeAtNs = this.host.wakeAtNs()
    let rx = this.step(conn.pendingBytes > 0 ? 0 : 1)
    const received = rx.length > 0
    for (let rounds = 0; ; rounds++) {
      if (conn.reflexSent) this.host.reflexSent(conn.reflexOrder())
      if (rx.length === 0) break
      this.host.receive(rx)
      if (conn.pendingBytes === 0 || rounds === ROUNDS_PER_TURN) break
      rx = this.step(0)
    }
    if (received) this.host.received()
    if (conn.timingsWaiting > KBX_FIX_TIMING_RING / 2) this.drainTimings()
    const gone = this.gone
    if (gone !== undefined) this.host.gone(gone)
  }

  /** A native step, its TX and RX times handed to the per-order breakdown. */
  private step(timeoutMs: number): Buffer {
    const conn = this.conn
    const rx = conn.step(timeoutMs, this.arm())
    const breakdown = this.host.breakdown
    if (conn.txNs !== 0n) breakdown.onWire(conn.txNs)
    if (rx.length > 0 && conn.rxNs !== 0n) breakdown.rxNs = conn.rxNs
    return rx
  }

  private arm(): ReflexArm | undefined {
    return this.reflexOn ? this.host.reflexArm() : undefined
  }

  /** The connection is gone: closed, or the peer sent its FIN (it will send no more FIX). */
  get gone(): string | undefined {
    const c = this.conn
    if (c.closed) return `TCP connection ${String(c.stats()['closeReason'])}`
    if (c.state === 'close-wait') return 'TCP connection closed by the peer (FIN)'
    return undefined
  }

  drop(): void {
    if (this.conn.closed) return
    this.conn.abort()
    this.conn.step(0)
  }

  async reconnect(timeoutMs: number): Promise<void> {
    this.drop()
    this.conn.reconnect()
    await this.established(timeoutMs)
    this.connections++
  }

  /** SYN retransmitted on timeout until ESTABLISHED, refused (RST) or timeoutMs. */
  private async established(timeoutMs: number): Promise<void> {
    const conn = this.conn
    const to = this.o.connect
    const deadline = Date.now() + timeoutMs
    while (!conn.established) {
      conn.step(1)
      if (conn.closed) {
        const reason = String(conn.stats()['closeReason'])
        throw new NetError(`connect to ${to.ip}:${to.port} over AF_XDP failed: ${reason}`, { op: 'connect (userspace TCP)', hint: 'is the acceptor running (fix-acceptor in namespace exch)?' })
      }
      if (Date.now() > deadline || this.ctx.signal.aborted) {
        conn.abort()
        conn.step(0)
        throw new NetError(`connect to ${to.ip}:${to.port} over AF_XDP timed out`, { op: 'connect (userspace TCP)', hint: 'is the next hop reachable and its MAC right (ip neigh)?' })
      }
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    this.ctx.log.debug({ local: this.local, zeroCopy: conn.zeroCopy, xdpMode: conn.xdpMode }, 'connected (userspace TCP over AF_XDP)')
  }

  /** The internal timings and the reflex's counters are read first (the connection ends closed). */
  async close(): Promise<void> {
    this.drainTimings()
    this.reflexStats()
    const conn = this.conn
    const deadline = Date.now() + 3000
    while (!conn.closed && conn.pendingBytes > 0 && Date.now() < deadline) conn.step(0)
    if (!conn.closed) conn.shutdown()
    while (!conn.closed && conn.state !== 'time-wait' && Date.now() < deadline) {
      conn.step(1)
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    if (!conn.closed && conn.state !== 'time-wait') {
      this.ctx.log.warn({ state: conn.state }, 'TCP close did not complete: sending RST')
      conn.abort()
      conn.step(0)
    }
  }

  tcpStats(): Record<string, unknown> {
    return { ...this.conn.stats(), umem: this.conn.umemAccounting() }
  }

  intervalFields(): Record<string, unknown> {
    this.drainTimings()
    const fields = { ...this.internalStats(this.intervalInternal), reflex: { ...this.reflexStats(), breakdownNs: breakdown(this.intervalInternal) } }
    for (const h of Object.values(this.intervalInternal)) h.reset()
    return fields
  }

  endFields(): Record<string, unknown> {
    return { ...this.internalStats(this.internal), ...(this.lastReflexStats === undefined ? {} : { reflex: { ...this.lastReflexStats, breakdownNs: breakdown(this.internal) } }) }
  }

  private drainTimings(): void {
    if (this.conn.closed) return
    const samples = this.conn.drainTimings()
    for (const name of timingNames) {
      this.internal[name].recordMany(samples[name])
      this.intervalInternal[name].recordMany(samples[name])
    }
  }

  /**
   * internalUs (RX descriptors taken → reply submitted to TX), of which internalNativeUs in C (TCP, copies,
   * checksums) and internalKickUs in the TX call (TX ring + sendto); the rest is TS and FFI.
   */
  private internalStats(h: Timings): Record<string, unknown> {
    return { internalUs: h.response.summary(), internalNativeUs: h.native.summary(), internalKickUs: h.kick.summary(), internalReflexUs: h.reflex.summary(), internalReflexKickUs: h.reflexKick.summary() }
  }

  /** What the native reflex framed and did (counts since start). */
  private reflexStats(): Record<string, number | boolean> | undefined {
    if (this.conn.closed) return this.lastReflexStats
    const c = this.conn.reflexCounters()
    this.lastReflexStats = { enabled: this.reflexOn, sent: c.sent, deferred: c.deferred, disarmed: c.disarmed, armed: c.armed, messages: c.messages, badChecksum: c.bad_checksum, badBodyLength: c.bad_body_length, badHeader: c.bad_header, garbageBytes: c.garbage_bytes }
    return this.lastReflexStats
  }
}
