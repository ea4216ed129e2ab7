// quic-flood's workers (--workers N): one flooder engine per worker, each with its own connections and its
// own socket (xdp io: an AF_XDP socket on its own RX queue; socket io: its connections' UDP sockets), driven
// by native threads (workers.ts). xdp io: the workers' local port ranges follow each other, so one steering
// range covers them and each worker knows which of the others owns a datagram that arrived on its queue.
import { UsageError, errnoOf } from '@kbx/errors'
import { BucketHistogram } from '@kbx/stats'
import type { XskSocket } from '@kbx/xsk'
import { Flood } from './engine.js'
import type { FloodOptions, FloodStats, Identity, ServerAddress, ServerStats } from './engine.js'
import { KBX_QUIC_LATENCY_LAYOUT } from './native.js'
import { Workers, mergeFloodStats, mergeServerStats, rotate } from './workers.js'
import type { WorkerShare } from './workers.js'

/** Tries for a free run of consecutive local ports for every worker (xdp io). */
const PORT_ATTEMPTS = 16

/** The flood's options but what each worker has of its own. */
export type FloodGroupOptions = Omit<FloodOptions, 'xsk' | 'connections' | 'count' | 'rate' | 'identities' | 'localPort'> & {
  identities: Identity[]
  shares: WorkerShare[]
  /** xdp io: one AF_XDP socket per worker, each on its own queue */
  xsks?: XskSocket[]
}

function createFloods(o: FloodGroupOptions): Flood[] {
  const floods: Flood[] = []
  try {
    o.shares.forEach((share, i) => {
      const previous = floods[i - 1]
      floods.push(
        Flood.create({
          ...o,
          connections: share.connections,
          count: share.count,
          rate: share.rate,
          identities: rotate(o.identities, share.identityOffset),
          ...(o.xsks ? { xsk: o.xsks[i]! } : {}),
          // xdp io: the ports right after the previous worker's (the first worker's: a random free range)
          ...(o.io === 'xdp' && previous ? { localPort: previous.localPort + previous.portCount } : {}),
        }),
      )
    })
    if (o.io === 'xdp' && floods.length > 1) Flood.link(floods)
    return floods
  } catch (e) {
    floods.forEach((f) => f.close())
    throw e
  }
}

/** N flooders driven by N native threads; every read or change of an engine happens while they are paused. */
export class FloodGroup {
  readonly floods: Flood[]
  #workers: Workers | undefined
  private constructor(floods: Flood[]) {
    this.floods = floods
  }
  static create(o: FloodGroupOptions): FloodGroup {
    if (o.xsks && o.xsks.length !== o.shares.length) throw new UsageError(`${o.shares.length} workers with ${o.xsks.length} AF_XDP sockets`)
    for (let attempt = 1; ; attempt++) {
      try {
        return new FloodGroup(createFloods(o))
      } catch (e) {
        const inUse = (e as { errno?: number }).errno === errnoOf('EADDRINUSE')
        if (!inUse || o.io !== 'xdp' || o.shares.length === 1 || attempt >= PORT_ATTEMPTS) throw e
      }
    }
  }
  /** First local port; the workers' ports run from it for portCount ports. */
  get localPort(): number {
    return this.floods[0]!.localPort
  }
  get portCount(): number {
    return this.floods.reduce((n, f) => n + f.portCount, 0)
  }
  /** Starts the threads: from here on the engines are theirs except within paused(). */
  start(): void {
    this.#workers = Workers.start('flood', this.floods.map((f) => f.ptr))
  }
  paused<T>(fn: () => T): T {
    return this.#workers ? this.#workers.paused(fn) : fn()
  }
  /** true once every worker is done (count acked, or stopped and drained); throws a worker's failure. */
  done(): boolean {
    return this.#workers?.check() === 'done'
  }
  stopSending(): void {
    this.paused(() => this.floods.forEach((f) => f.stopSending()))
  }
  setServers(servers: readonly ServerAddress[]): void {
    this.paused(() => this.floods.forEach((f) => f.setServers(servers)))
  }
  /**
   * Every worker's counters, their sum, the send->ack latencies since the last take, each server's report and
   * whatever `alsoRead` reads of the engines' resources (the UMEMs' frame audit): one pause, one instant.
   */
  take<T>(alsoRead: () => T): { total: FloodStats; perWorker: FloodStats[]; latencies: BucketHistogram; servers: ServerStats[]; also: T } {
    return this.paused(() => {
      const perWorker = this.floods.map((f) => f.stats())
      const latencies = new BucketHistogram(KBX_QUIC_LATENCY_LAYOUT)
      this.floods.forEach((f) => latencies.add(f.takeLatencies()))
      const servers = mergeServerStats(this.floods.map((f) => f.takeServers()))
      return { total: mergeFloodStats(perWorker), perWorker, latencies, servers, also: alsoRead() }
    })
  }
  /** Joins the threads: the counters stay still from here on (what take() then reads is final). */
  stopThreads(): void {
    this.#workers?.stop()
    this.#workers = undefined
  }
  /** Stops the threads, then closes every engine (CONNECTION_CLOSE on each connection). */
  close(): void {
    this.stopThreads()
    this.floods.forEach((f) => f.close())
  }
}

/** Each worker's `data.workers` entry. */
export function workerReports(group: FloodGroup, perWorker: readonly FloodStats[], xsks: readonly XskSocket[] | undefined) {
  return perWorker.map((s, i) => ({
    worker: i,
    ...(xsks ? { queue: xsks[i]!.queue } : {}),
    localPort: group.floods[i]!.localPort,
    localPorts: group.floods[i]!.portCount,
    sent: s.tx_sent,
    acked: s.tx_acked,
    unackedAtClose: s.tx_unacked_closed,
    handshakes: s.handshakes,
    connectionsOpen: s.connections_open,
    packetsSent: s.packets_sent,
    packetsReceived: s.packets_received,
    rxFrames: s.rx_frames,
    rxHandedOff: s.rx_handed_off,
    rxHandoffReceived: s.rx_handoff_received,
    rxHandoffDropped: s.rx_handoff_dropped,
  }))
}
