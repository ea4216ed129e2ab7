// fix-tcp's connection to the gateway behind one interface, made again after it is lost: the userspace TCP on
// AF_XDP (xdp-transport.ts: the same socket, UMEM and steering program; a new TCP connection, same 4-tuple)
// or a kernel TCP socket (socket-transport.ts: a new one). The run (client.ts) drives either the same way.
import type { IpPort, ToolContext } from '@kbx/cli'
import type { OrderBreakdown } from './breakdown.js'
import type { ReflexArm, ReflexOrder, ReflexTemplate } from './reflex.js'
import { SocketTransport } from './socket-transport.js'
import type { XdpConnectionOptions } from './xdp-connection.js'
import { XdpTransport } from './xdp-transport.js'

export type IoKind = 'xdp' | 'socket'

/** The part of a ToolContext a transport uses. */
export type TransportContext = Pick<ToolContext, 'log' | 'signal' | 'onCleanup'>

/** What a transport hands its events to: the FIX session of the run. */
export interface TransportHost {
  /** Received bytes, in order. */
  receive(bytes: Buffer): void
  /** After a batch of received bytes (the session's numbers can be saved). */
  received(): void
  /** The connection went away under the session: closed, or the peer's FIN (it will send no more FIX). */
  gone(reason: string): void
  /** --io xdp with the reflex: how to arm it for the next native step (undefined: unarmed). */
  reflexArm(): ReflexArm | undefined
  /** The reflex sent this order: recorded before the session reads the ExecutionReport it answered. */
  reflexSent(order: ReflexOrder): void
  /** --rate: sends the orders due now (written to the transport); true when it sent any. */
  paceDue(): boolean
  /** --rate: when the next order is due (CLOCK_MONOTONIC ns, 0n: none): a turn's wait ends there at the latest. */
  wakeAtNs(): bigint
  /** Per-order stamps: the transport says when what was written left and when what is read arrived. */
  readonly breakdown: OrderBreakdown
}

export interface FixTransport {
  readonly io: IoKind
  /** ip:port of the current connection's local end. */
  readonly local: string
  /** Connections made so far (the first included). */
  readonly connections: number
  /**
   * After a turn: true when the run waits for an event before the next, false when it turns again at once
   * (the turn waited in a native call: xdp on its RX ring, socket on its descriptor).
   */
  readonly waitsForEvents: boolean
  /**
   * From now on the native reflex answers with orders from this template (undefined: off); false when this
   * transport has no reflex (--io socket).
   */
  useReflex(template: ReflexTemplate | undefined): boolean
  /** Fields the `start` event adds for this transport. */
  startFields(): Record<string, unknown>
  /** Queues the session's bytes; false when there is no room or no connection. */
  write(bytes: Buffer): boolean
  /**
   * Free bytes for writes (xdp: the staging buffer, which the TCP's send buffer drains while the peer's window
   * allows; socket: unbounded, as Node.js queues). The pacer holds orders back instead of having them dropped.
   */
  readonly room: number
  /** Runs fn with the writes it makes sent together (socket: corked). */
  batch(fn: () => void): void
  /**
   * One turn of the run loop after the session's housekeeping: orders due sent, then a wait until bytes
   * arrive, the next order is due (host.wakeAtNs) or about 1 ms (xdp: native batch calls; socket: a native
   * wait on its descriptor, the bytes then read by the event loop).
   */
  turn(): void
  /** Drops the current connection at once (RST unless already closed), as when giving up on a silent peer. */
  drop(): void
  /** One attempt at a new connection: resolves when it is up, throws NetError when refused or timed out. */
  reconnect(timeoutMs: number): Promise<void>
  /** Clean end: FIN after what is queued (xdp: both FINs acknowledged, or 3 s, then RST). */
  close(): Promise<void>
  /** The `tcp` field of `interval` and `end`. */
  tcpStats(): Record<string, unknown>
  /** Fields `interval` adds (xdp: internal timings and the reflex), the interval's histograms restarted. */
  intervalFields(): Record<string, unknown>
  /** Fields `end` adds (after close). */
  endFields(): Record<string, unknown>
}

export interface TransportOptions {
  io: IoKind
  connect: IpPort
  /** Source address for --io socket. */
  localAddress: string
  xdp: Omit<XdpConnectionOptions, 'remoteIp' | 'remotePort'>
  /** Waits spin instead of sleeping (xdp: on the RX ring; socket: poll() on the descriptor without a timeout). */
  busyPoll: boolean
  /** --io xdp: the native reflex sends each next order from this template (undefined: off). */
  reflex?: ReflexTemplate
}

/** The first connection: errors are fatal to the caller (exit 1). */
export function openTransport(o: TransportOptions, host: TransportHost, ctx: TransportContext): Promise<FixTransport> {
  return o.io === 'xdp' ? XdpTransport.open(o, host, ctx) : SocketTransport.open(o, host, ctx)
}
