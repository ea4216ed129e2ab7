// The arbitrated feed as a library: the XDP program on both lines, one AF_XDP socket per line queue
// (one shared UMEM), and the native receive loop. One FFI call per batch (Arbitrator.poll).
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { ensureBpffs } from '@kbx/bpf'
import { attachOrJoin } from '@kbx/xdp-load'
import type { ToolAttachment } from '@kbx/xdp-load'
import type { BpfMap, BpfObject } from '@kbx/bpf'
import type { XdpMode } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { kbxAddress, koffi } from '@kbx/ffi'
import { interfaceInfo } from '@kbx/net'
import { BucketHistogram } from '@kbx/stats'
import { Umem, XskSocket, steerTo } from '@kbx/xsk'
import type { XskStatistics } from '@kbx/xsk'
import type { Channel } from './channels.js'
import { FORMAT_CODE, type FeedFormat } from './format.js'
import { groupTableEntries, readChannelCounters, type ChannelCounters } from './group-table.js'
import {
  AbStreamKey,
  KBX_AB_EVENT_KIND,
  KBX_AB_EVENT_SIZE,
  KBX_AB_GAP_OUTCOME,
  KBX_AB_LINE_RECOVERY,
  KBX_AB_RECORD_HEADER_SIZE,
  KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST,
  KbxAbRecoveryConfig,
  type KbxAbRecoveryConfigValue,
  KBX_AB_DEFAULT_HOLD_MAX,
  KBX_AB_HOLD_LAYOUT,
  KbxAbHoldStats,
  KbxAbOrderConfig,
  KBX_AB_RX_COUNTERS_SIZE,
  KbxAbEvent,
  KbxAbRecord,
  abError,
  abLimits,
  createReceiveLoop,
  libkbxAb,
  readReceiveCounters,
  type KbxAbRxCounterField,
} from './native.js'
import { NativeOutputs, type OutputCounters, type OutputSpec } from './outputs.js'
import { loadArbitratorProgram, readArbitratorCounters, readSkew, type Skew } from './program.js'

export interface ArbitratorOptions {
  lineA: string
  lineB: string
  format?: FeedFormat
  /** UDP destination ports of the feed, inclusive (default 8080..8080). */
  portMin?: number
  portMax?: number
  window?: number
  /** Streams the XDP table and the receive loop hold (default AB_DEFAULT_STREAMS). */
  maxStreams?: number
  /** A number this far from the newest, either way, restarts its stream (default AB_DEFAULT_RESET_DISTANCE). */
  resetDistance?: bigint
  /** Skew sampled on one number in this many (power of two, default 8). */
  skewSample?: number
  mode?: XdpMode
  /** Bind only this rx queue of each line (default: every queue): another AF_XDP tool may own the others. */
  queue?: number
  /** Copy every delivered frame out (DeliveredBatch.packets); off: counters and gaps only. */
  copyFrames?: boolean
  /** Fill and RX ring entries per socket (power of two, default 4096). */
  ringSize?: number
  /** Descriptors taken per socket per poll (default KBX_AB_DEFAULT_BATCH of native/include/kbx_ab.h). */
  batchSize?: number
  log?: (msg: string) => void
  /** Pin the program's maps (never its links) under /sys/fs/bpf/kbx/ab/<pin> so they outlive the run. */
  pin?: string
  /** Multicast channels: XDP steers exactly their groups (A's on lineA, B's on lineB), not the port range. */
  channels?: Channel[]
  /** udp and shm outputs, written by the receive loop in C (pcap outputs are the caller's: copyFrames). */
  outputs?: OutputSpec[]
  /** The interface multicast udp outputs leave through. */
  outIface?: string
  /** MoldUDP64 gap recovery from this request server (moldudp64 feeds only; native/include/kbx_ab.h). */
  recovery?: RecoveryOptions
  /** Sequence order: per stream strictly in sequence, a packet after a hole held up to holdUs (kbx_ab_rx_enable_order). */
  order?: { holdUs: number; holdMax?: number }
  /** Spin on the RX rings for a poll's whole timeout instead of sleeping in poll() (one core at 100%; the kernel never wakes the loop). */
  busyPoll?: boolean
  /** Otherwise, spin this long (µs) before sleeping (default 0: sleep at once). */
  spinUs?: number
  /** Delivered messages carry the XDP program's arrival time, and arrivalDelays() measures XDP arrival to the RX ring. */
  xdpArrival?: boolean
}

export interface RecoveryOptions {
  server: { ip: string; port: number }
  /** Messages per request (default KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST, CME's 2000). */
  maxRequest?: number
  /** Requests sent again before a gap is lost. */
  retries: number
  /** A hole open this long (µs) is requested, before the window passes it. */
  waitUs: number
  /** The first retry after this (µs), doubled for each further one. */
  timeoutUs: number
}

/** Where `pin` puts a run's maps. */
export function abPinDirectory(run: string): string {
  return `/sys/fs/bpf/kbx/ab/${run}`
}

export interface Gap {
  stream: string
  from: bigint
  to: bigint
  count: number
  /** With recovery: every message answered, or not all of them after the retries. */
  outcome?: 'recovered' | 'lost'
  /** From the hole's declaration to its last recovered message. */
  recoveryUs?: number
}

export interface DeliveredPacket {
  /** The line that won, or the recovery server's answer. */
  line: 'A' | 'B' | 'recovery'
  stream: string
  sequence: bigint
  realtimeNs: bigint
  /** The frame (a copy the caller may keep). */
  frame: Buffer
}

/** A stream's numbering restarted, a new session followed an ended one, or a session ended. */
export type StreamEvent =
  | { kind: 'restart'; stream: string; from: bigint; to: bigint }
  | { kind: 'newSession'; stream: string; previous: string; from: bigint; to: bigint }
  | { kind: 'sessionEnd'; stream: string; next: bigint }
  /** Both lines ended the session: it left the receive loop's table (and, through Arbitrator.poll, the XDP program's). */
  | { kind: 'sessionClosed'; stream: string; key: Buffer }

export interface DeliveredBatch {
  gaps: Gap[]
  /** Restarts and session ends. */
  events: StreamEvent[]
  /** Empty unless copyFrames. */
  packets: DeliveredPacket[]
}

export type ReceiveCounters = Record<KbxAbRxCounterField, bigint>

const EVENT_CAPACITY = 256

const KEY = { id: koffi.offsetof(AbStreamKey, 'id'), id2: koffi.offsetof(AbStreamKey, 'id2'), format: koffi.offsetof(AbStreamKey, 'format') }
const KEY_SIZE = koffi.sizeof(AbStreamKey)
const EVENT = {
  key: koffi.offsetof(KbxAbEvent, 'key'),
  from: koffi.offsetof(KbxAbEvent, 'from'),
  to: koffi.offsetof(KbxAbEvent, 'to'),
  count: koffi.offsetof(KbxAbEvent, 'count'),
  kind: koffi.offsetof(KbxAbEvent, 'kind'),
  outcome: koffi.offsetof(KbxAbEvent, 'outcome'),
  previous: koffi.offsetof(KbxAbEvent, 'previous'),
  recoveryNs: koffi.offsetof(KbxAbEvent, 'recovery_ns'),
}
const RECORD = {
  len: koffi.offsetof(KbxAbRecord, 'len'),
  line: koffi.offsetof(KbxAbRecord, 'line'),
  realtimeNs: koffi.offsetof(KbxAbRecord, 'realtime_ns'),
  sequence: koffi.offsetof(KbxAbRecord, 'sequence'),
  key: koffi.offsetof(KbxAbRecord, 'key'),
}

/** Stream name of a struct ab_stream_key: optiq session id in decimal, moldudp64 session text. */
export function streamKeyName(key: Buffer): string {
  const format = key.readUInt32LE(KEY.format)
  if (format === FORMAT_CODE.optiq) return key.readBigUInt64LE(KEY.id).toString()
  // moldudp64: session[0..8) in id, session[8..10) in the low bytes of id2
  const session = Buffer.alloc(10)
  key.copy(session, 0, KEY.id, KEY.id + 8)
  session.writeUInt16LE(key.readUInt32LE(KEY.id2) & 0xffff, 8)
  return session.toString('ascii').trimEnd()
}

/** A line's XDP attachment: its own bpf_link or a component of kbx's dispatcher on that interface. */
export type AbAttachment = ToolAttachment & { ifindex: number }

export class Arbitrator {
  readonly format: FeedFormat
  readonly window: number
  readonly sockets: XskSocket[]
  readonly links: AbAttachment[]
  readonly lineA: string
  readonly lineB: string
  readonly #obj: BpfObject
  readonly #streams: BpfMap
  readonly #umem: Umem
  readonly #rx: number
  readonly maxStreams: number
  readonly channels: Channel[]
  /** Gap recovery is on (RecoveryOptions). */
  readonly recovering: boolean
  readonly #gaps = Buffer.from(new ArrayBuffer(EVENT_CAPACITY * KBX_AB_EVENT_SIZE))
  readonly #gapsAddress = kbxAddress(this.#gaps)
  readonly #counters = Buffer.from(new ArrayBuffer(KBX_AB_RX_COUNTERS_SIZE))
  readonly #countersAddress = kbxAddress(this.#counters)
  readonly #copied = Buffer.from(new ArrayBuffer(8))
  readonly #copiedAddress = kbxAddress(this.#copied)
  readonly #copy: Buffer | undefined
  readonly #copyAddress: number
  readonly #outputs: NativeOutputs | undefined
  #closed = false

  private constructor(parts: {
    options: ArbitratorOptions
    obj: BpfObject
    umem: Umem
    sockets: XskSocket[]
    links: AbAttachment[]
    rx: number
    copy: Buffer | undefined
    pinned: string[]
    outputs: NativeOutputs | undefined
  }) {
    this.#outputs = parts.outputs
    this.pinnedMaps = parts.pinned
    this.format = parts.options.format ?? 'optiq'
    this.window = parts.options.window ?? abLimits().default_window
    this.maxStreams = parts.options.maxStreams ?? abLimits().default_streams
    this.lineA = parts.options.lineA
    this.lineB = parts.options.lineB
    this.channels = parts.options.channels ?? []
    this.recovering = parts.options.recovery !== undefined
    this.#obj = parts.obj
    this.#streams = parts.obj.map('streams')
    this.#umem = parts.umem
    this.sockets = parts.sockets
    this.links = parts.links
    this.#rx = parts.rx
    this.#copy = parts.copy
    this.#copyAddress = parts.copy ? kbxAddress(parts.copy) : 0
  }

  /** Pinned map paths of this run (empty without `pin`). */
  readonly pinnedMaps: string[]

  /** Loads and attaches everything; close() undoes it (and the kernel does on process death: bpf_link). */
  static open(options: ArbitratorOptions): Arbitrator {
    const format = options.format ?? 'optiq'
    const limits = abLimits()
    const window = options.window ?? limits.default_window
    const batchSize = options.batchSize ?? limits.default_batch
    const log = options.log ?? (() => {})
    const a = interfaceInfo(options.lineA)
    const b = interfaceInfo(options.lineB)
    const undo: (() => void)[] = []
    try {
      // The outputs first: a socket or ring that cannot be opened stops the run before anything attaches.
      const nativeOutputs = options.outputs?.some((o) => o.kind !== 'pcap')
        ? NativeOutputs.open(options.outputs, { format: FORMAT_CODE[format], ...(options.outIface !== undefined ? { outIface: options.outIface } : {}) })
        : undefined
      if (nativeOutputs) undo.push(() => nativeOutputs.close())
      const obj = loadArbitratorProgram({
        format,
        portMin: options.portMin ?? 8080,
        portMax: options.portMax ?? options.portMin ?? 8080,
        lineBIfindex: b.ifindex,
        window,
        ...(options.maxStreams === undefined ? {} : { maxStreams: options.maxStreams }),
        ...(options.resetDistance === undefined ? {} : { resetDistance: options.resetDistance }),
        ...(options.skewSample === undefined ? {} : { skewSample: options.skewSample }),
        ...(options.xdpArrival ? { arrivalStamp: true } : {}),
        ...(options.channels?.length ? { groupTable: { channels: options.channels.length, entries: groupTableEntries(options.channels, a.ifindex, b.ifindex) } } : {}),
      })
      undo.push(() => obj.close())
      // Deep rings: a line's burst while the process is descheduled waits in its fill/RX ring
      // (ringSize frames per socket) instead of being dropped.
      const queuesOf = (info: { name: string; rxQueues: number }): number[] => {
        if (options.queue === undefined) return [...Array(info.rxQueues).keys()]
        if (options.queue >= info.rxQueues) throw new UsageError(`${info.name} has ${info.rxQueues} rx queue(s): no queue ${options.queue}`, { op: 'open A/B arbitrator' })
        return [options.queue]
      }
      const queues = queuesOf(a).length + queuesOf(b).length
      const ringSize = options.ringSize ?? 4096
      const umem = Umem.create({ frameCount: ringSize * (queues + 1) + 1024 * queues, fillSize: ringSize })
      undo.push(() => umem.close())
      const sockets: XskSocket[] = []
      const lines: number[] = []
      for (const [line, info] of [a, b].entries()) {
        for (const queue of queuesOf(info)) {
          const mode = options.mode ?? 'auto'
          sockets.push(XskSocket.create({ umem, iface: info.name, queue, tx: false, mode, log, rxSize: ringSize, fillFrames: ringSize }))
          lines.push(line)
        }
      }
      undo.push(() => sockets.forEach((s) => s.close()))
      steerTo(obj, sockets)
      // Each line: its own bpf_link, or one more program of kbx's dispatcher when the interface carries one.
      const prog = obj.program().name
      const links: AbAttachment[] = []
      undo.push(() => links.forEach((l) => l.detach()))
      for (const info of [a, b]) {
        const link = attachOrJoin(obj, prog, info.name, options.mode ?? 'auto', { tool: 'ab-arbitrate', log })
        links.push({ ...link, ifindex: info.ifindex })
      }
      const pinned = options.pin !== undefined ? pinMaps(obj, options.pin, log) : []

      const ab = libkbxAb()
      const rx = createReceiveLoop({
        format: FORMAT_CODE[format],
        window,
        max_streams: options.maxStreams ?? limits.default_streams,
        batch_size: batchSize,
        reset_distance: options.resetDistance ?? limits.default_reset_distance,
        busy_poll_us: options.busyPoll ? 0xffffffff : (options.spinUs ?? 0),
        xdp_arrival: options.xdpArrival ? 1 : 0,
      })
      undo.push(() => ab.kbx_ab_rx_destroy(rx))
      if (nativeOutputs) ab.kbx_ab_rx_set_output(rx, nativeOutputs.address)
      sockets.forEach((socket, i) => {
        const added = ab.kbx_ab_rx_add_socket(rx, umem.address, socket.fd, lines[i]!)
        if (added < 0) throw abError(added, 'add socket to the A/B receive loop')
      })
      if (options.recovery) enableRecovery(rx, options.recovery)
      if (options.order) enableOrder(rx, options.order)
      const frameRoom = batchSize * sockets.length * (KBX_AB_RECORD_HEADER_SIZE + umem.frameSize)
      const copy = options.copyFrames ? Buffer.from(new ArrayBuffer(frameRoom)) : undefined
      return new Arbitrator({ options, obj, umem, sockets, links, rx, copy, pinned, outputs: nativeOutputs })
    } catch (e) {
      for (const step of undo.reverse()) step()
      throw e
    }
  }

  /** ONE native call: a batch from every socket (waiting up to timeoutMs when all are idle). */
  poll(timeoutMs = 0): DeliveredBatch {
    const ab = libkbxAb()
    const n = ab.kbx_ab_rx_poll(this.#rx, this.#gapsAddress, EVENT_CAPACITY, this.#copyAddress, this.#copy?.length ?? 0, this.#copiedAddress, timeoutMs)
    if (n < 0) throw abError(n, 'A/B receive')
    const read = readEvents(this.#gaps, n)
    // A closed session leaves the XDP program's stream table too (one map call per session, not per packet).
    for (const e of read.events) if (e.kind === 'sessionClosed') this.#streams.delete(e.key)
    return { ...read, packets: this.#copy ? this.#readPackets(this.#copied.readUInt32LE(0)) : [] }
  }

  /** Holes below each stream's highest number, as gaps (call at the end). */
  flush(): { gaps: Gap[]; events: StreamEvent[] } {
    const all: { gaps: Gap[]; events: StreamEvent[] } = { gaps: [], events: [] }
    for (;;) {
      const n = libkbxAb().kbx_ab_rx_flush(this.#rx, this.#gapsAddress, EVENT_CAPACITY)
      const read = readEvents(this.#gaps, n)
      all.gaps.push(...read.gaps)
      all.events.push(...read.events)
      if (n < EVENT_CAPACITY) return all
    }
  }

  /** Delivered batches until the signal aborts; the iterator's return ends it. */
  async *batches(signal?: AbortSignal, timeoutMs = 2): AsyncGenerator<DeliveredBatch> {
    while (!signal?.aborted && !this.#closed) {
      const batch = this.poll(timeoutMs)
      if (batch.gaps.length || batch.events.length || batch.packets.length) yield batch
      else await new Promise((r) => setImmediate(r))
    }
  }

  receiveCounters(): ReceiveCounters {
    libkbxAb().kbx_ab_rx_counters(this.#rx, this.#countersAddress)
    return readReceiveCounters(this.#counters)
  }

  /** Per udp and shm output, in the order given. */
  outputCounters(): OutputCounters[] {
    return this.#outputs?.counters() ?? []
  }

  /** Sequence order: how long delivered packets were held (those that waited). */
  holdTimes(): BucketHistogram {
    return this.#latencyHistogram((rx, out) => libkbxAb().kbx_ab_rx_hold_stats(rx, out))
  }

  /** With xdpArrival: how long stamped packets took from the XDP program to the receive loop's RX step. */
  arrivalDelays(): BucketHistogram {
    return this.#latencyHistogram((rx, out) => libkbxAb().kbx_ab_rx_arrival_stats(rx, out))
  }

  /** A struct kbx_ab_hold_stats the native call fills, as a histogram. */
  #latencyHistogram(read: (rx: number, out: number) => void): BucketHistogram {
    const buffer = Buffer.from(new ArrayBuffer(koffi.sizeof(KbxAbHoldStats)))
    read(this.#rx, kbxAddress(buffer))
    const s = koffi.decode(buffer, KbxAbHoldStats) as { min_ns: bigint | number; max_ns: bigint | number; sum_ns: bigint | number; buckets: (bigint | number)[] }
    return BucketHistogram.of(KBX_AB_HOLD_LAYOUT, s.buckets, { minNs: s.min_ns, maxNs: s.max_ns, sumNs: s.sum_ns })
  }

  /** At the end: every hole is given up on at the next polls, so what is held is delivered. */
  releaseHeld(): void {
    libkbxAb().kbx_ab_rx_release_held(this.#rx)
  }

  xdpCounters(): Record<string, bigint> {
    return readArbitratorCounters(this.#obj)
  }

  /** Per multicast channel, in the order of `channels` (empty for a unicast feed). */
  channelCounters(): ChannelCounters[] {
    return this.channels.length ? readChannelCounters(this.#obj, this.channels.length) : []
  }

  /** A-vs-B skew sampled since the start, from the XDP program. */
  skew(): Skew {
    return readSkew(this.#obj)
  }

  socketStatistics(): { iface: string; queue: number; statistics: XskStatistics }[] {
    return this.sockets.map((s) => ({ iface: s.iface, queue: s.queue, statistics: s.statistics() }))
  }

  umemAccounting(): ReturnType<Umem['accounting']> {
    return this.#umem.accounting()
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const link of this.links) link.detach()
    libkbxAb().kbx_ab_rx_destroy(this.#rx)
    this.#outputs?.close()
    for (const s of this.sockets) s.close()
    this.#umem.close()
    this.#obj.close()
  }

  #readPackets(bytes: number): DeliveredPacket[] {
    const copy = this.#copy!
    const packets: DeliveredPacket[] = []
    for (let at = 0; at < bytes; ) {
      const len = copy.readUInt32LE(at + RECORD.len)
      packets.push({
        line: lineName(copy.readUInt32LE(at + RECORD.line)),
        realtimeNs: copy.readBigUInt64LE(at + RECORD.realtimeNs),
        sequence: copy.readBigUInt64LE(at + RECORD.sequence),
        stream: streamKeyName(copy.subarray(at + RECORD.key, at + RECORD.key + KEY_SIZE)),
        frame: Buffer.from(copy.subarray(at + KBX_AB_RECORD_HEADER_SIZE, at + KBX_AB_RECORD_HEADER_SIZE + len)),
      })
      at += KBX_AB_RECORD_HEADER_SIZE + ((len + 7) & ~7)
    }
    return packets
  }
}

function lineName(line: number): DeliveredPacket['line'] {
  return line === KBX_AB_LINE_RECOVERY ? 'recovery' : line ? 'B' : 'A'
}

function enableOrder(rx: number, o: { holdUs: number; holdMax?: number }): void {
  const buffer = Buffer.alloc(koffi.sizeof(KbxAbOrderConfig))
  koffi.encode(buffer, 0, KbxAbOrderConfig, { hold_ns: BigInt(Math.round(o.holdUs * 1000)), hold_max: o.holdMax ?? KBX_AB_DEFAULT_HOLD_MAX, reserved: 0 })
  const rc = libkbxAb().kbx_ab_rx_enable_order(rx, kbxAddress(buffer))
  if (rc < 0) throw abError(rc, 'enable sequence order')
}

/** Opens the receive loop's recovery socket towards the request server. */
function enableRecovery(rx: number, o: RecoveryOptions): void {
  const ip = o.server.ip.split('.').map(Number)
  const config: KbxAbRecoveryConfigValue = {
    server_ip: Buffer.from(ip).readUInt32LE(0),
    server_port: o.server.port,
    max_request: o.maxRequest ?? KBX_AB_RECOVERY_DEFAULT_MAX_REQUEST,
    retries: o.retries,
    wait_ns: BigInt(Math.round(o.waitUs * 1000)),
    timeout_ns: BigInt(Math.round(o.timeoutUs * 1000)),
  }
  const buffer = Buffer.alloc(koffi.sizeof(KbxAbRecoveryConfig))
  koffi.encode(buffer, 0, KbxAbRecoveryConfig, config)
  const rc = libkbxAb().kbx_ab_rx_enable_recovery(rx, kbxAddress(buffer))
  if (rc < 0) throw abError(rc, 'enable MoldUDP64 recovery')
}

/** Event records (struct kbx_ab_event) as gaps and stream events. */
export function readEvents(records: Buffer, n: number): { gaps: Gap[]; events: StreamEvent[] } {
  const gaps: Gap[] = []
  const events: StreamEvent[] = []
  for (let i = 0; i < n; i++) {
    const at = i * KBX_AB_EVENT_SIZE
    const key = records.subarray(at + EVENT.key, at + EVENT.key + KEY_SIZE)
    const stream = streamKeyName(key)
    const from = records.readBigUInt64LE(at + EVENT.from)
    const to = records.readBigUInt64LE(at + EVENT.to)
    const kind = records.readUInt32LE(at + EVENT.kind)
    if (kind === KBX_AB_EVENT_KIND.gap) {
      const gap: Gap = { stream, from, to, count: Number(records.readBigUInt64LE(at + EVENT.count)) }
      const outcome = records.readUInt32LE(at + EVENT.outcome)
      if (outcome === KBX_AB_GAP_OUTCOME.recovered) {
        gap.outcome = 'recovered'
        gap.recoveryUs = Number(records.readBigUInt64LE(at + EVENT.recoveryNs)) / 1000
      } else if (outcome === KBX_AB_GAP_OUTCOME.lost) gap.outcome = 'lost'
      gaps.push(gap)
    }
    else if (kind === KBX_AB_EVENT_KIND.restart) events.push({ kind: 'restart', stream, from, to })
    else if (kind === KBX_AB_EVENT_KIND.newSession) events.push({ kind: 'newSession', stream, previous: streamKeyName(records.subarray(at + EVENT.previous, at + EVENT.previous + KEY_SIZE)), from, to })
    else if (kind === KBX_AB_EVENT_KIND.sessionEnd) events.push({ kind: 'sessionEnd', stream, next: from })
    else if (kind === KBX_AB_EVENT_KIND.sessionClosed) events.push({ kind: 'sessionClosed', stream, key: Buffer.from(key) })
  }
  return { gaps, events }
}

function pinMaps(obj: BpfObject, run: string, log: (msg: string) => void): string[] {
  if (!/^[A-Za-z0-9_.-]+$/.test(run) || run === '.' || run === '..')
    throw new UsageError(`--pin ${JSON.stringify(run)}: a run name is letters, digits, '_', '-', '.'`)
  ensureBpffs()
  const dir = abPinDirectory(run)
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new UsageError(`--pin ${run}: ${dir} already holds pinned maps`, { hint: `remove them (rm -r ${dir}) or choose another run name` })
  mkdirSync(dir, { recursive: true })
  const paths: string[] = []
  try {
    // libbpf's internal maps (.rodata, .bss) have names bpffs refuses: the program's own maps only
    for (const map of obj.maps().filter((m) => !m.name.startsWith('.'))) {
      const path = `${dir}/${map.name}`
      map.pin(path)
      paths.push(path)
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  log(`pinned ${paths.length} maps under ${dir} (they stay after exit: rm -r ${dir})`)
  return paths
}
