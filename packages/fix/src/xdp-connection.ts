// fix-tcp --io xdp: the userspace TCP connection (native/src/tcp_conn.c, tcp_input.c) on an AF_XDP socket, driven by
// native/src/fix_xdp.c one call per batch, with bpf/fix_steer.bpf.c steering only this connection's
// 4-tuple (and ARP for our address) to the socket. The FIX session sees a byte stream, as over net.Socket.
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { BpfObject, raiseMemlockLimit } from '@kbx/bpf'
import { NetError, XskError } from '@kbx/errors'
import { bpfObjectPath, kbxAddress, nativeError, readU64Fields } from '@kbx/ffi'
import { KBX_FIX_TIMING_NAMES, KBX_FIX_TIMING_RING, KBX_FIX_XDP_COUNTER_FIELDS, KBX_FIX_XDP_RESULT_FIELDS, KBX_TCP_CLOSE_REASONS, KBX_TCP_STATE_NAMES, KBX_TCP_STATS_FIELDS, libkbxFixPacing, libkbxFixXdp } from './native.js'
import type { KbxFixXdpPtr } from './native.js'
import { parseIPv4, parseMac, resolveNextHop } from '@kbx/net'
import { Umem, XskSocket, steerTo } from '@kbx/xsk'
import { attachOrJoin } from '@kbx/xdp-load'
import type { ToolAttachment } from '@kbx/xdp-load'
import { ReflexIo, configureReflex, reflexCounters } from './reflex.js'
import type { ReflexArm, ReflexCounters, ReflexOrder, ReflexTemplate } from './reflex.js'
import { StagedBytes } from './staged-bytes.js'

export interface XdpConnectionOptions {
  iface: string
  remoteIp: string
  remotePort: number
  queue?: number
  mode?: 'native' | 'skb' | 'auto'
  ecn?: boolean
  /** Waits spin on the RX ring instead of sleeping in poll(): lowest latency, one core at 100%. */
  busyPoll?: boolean
  /** Test hook: the stack silently drops its Nth new data segment (1-based), recovered by retransmission. */
  dropTxNth?: number
  /**
   * Without busyPoll, a wait after sending spins on the RX ring this long before sleeping (the answer is
   * due); default 200. 0: sleep at once (paced runs: on a small machine the spin takes the core the peer needs).
   */
  spinAfterSendUs?: number
  /** TCP keep-alive probes after this many idle seconds; 0 or absent: none. */
  keepaliveS?: number
  log?: (msg: string) => void
}

const RX_CAPACITY = 256 * 1024
const TX_CAPACITY = 1024 * 1024
/** Session bytes that may wait behind the full staging buffer (a burst of orders, a large resend). */
const TX_QUEUE_CAPACITY = 64 * 1024 * 1024
const RESULT_SIZE = KBX_FIX_XDP_RESULT_FIELDS.length * 4
const RESULT_TIMINGS = KBX_FIX_XDP_RESULT_FIELDS.indexOf('timings') * 4
const RESULT_REFLEX_SENT = KBX_FIX_XDP_RESULT_FIELDS.indexOf('reflex_sent') * 4
const TIMINGS = KBX_FIX_TIMING_NAMES.length

/** IPv4 address as 4 bytes in network order. */
function wireIPv4(ip: string): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(parseIPv4(ip))
  return b
}

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
}

/** Reserves an ephemeral port on localIp with a kernel listener, so the kernel hands it to nobody else. */
function reservePort(localIp: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', (err) => reject(new NetError(`reserve a local port on ${localIp}: ${err.message}`, { op: 'reserve local port' })))
    server.listen({ host: localIp, port: 0, backlog: 1 }, () => {
      const address = server.address()
      if (address === null || typeof address === 'string') return reject(new NetError('reserve a local port: no address', { op: 'reserve local port' }))
      resolve({ server, port: address.port })
    })
  })
}

export class XdpConnection {
  readonly localIp: string
  readonly localPort: number
  readonly localMac: string
  readonly nextHopMac: string
  readonly zeroCopy: boolean
  readonly xdpMode: string
  /** The steering program's bpf_link and program ids (bpftool link/prog show): kbx's dispatcher's when it joined one. */
  readonly xdpLinkId: number
  readonly xdpProgId: number
  #x: KbxFixXdpPtr | null
  readonly #address: number
  readonly #umem: Umem
  readonly #socket: XskSocket
  readonly #obj: BpfObject
  #link: ToolAttachment | null
  readonly #reservation: Server
  readonly #rx = Buffer.from(new ArrayBuffer(RX_CAPACITY))
  readonly #rxAddress = kbxAddress(this.#rx)
  readonly #tx = Buffer.from(new ArrayBuffer(TX_CAPACITY))
  readonly #txAddress = kbxAddress(this.#tx)
  readonly #staged = new StagedBytes(this.#tx, TX_QUEUE_CAPACITY)
  readonly #result = Buffer.from(new ArrayBuffer(RESULT_SIZE))
  readonly #resultAddress = kbxAddress(this.#result)
  readonly #statsBuf = Buffer.alloc(KBX_TCP_STATS_FIELDS.length * 8)
  readonly #countersBuf = Buffer.alloc(KBX_FIX_XDP_COUNTER_FIELDS.length * 8)
  /** Drain target: the samples of each timing ring, then their counts (all u32). */
  readonly #timings = Buffer.from(new ArrayBuffer((TIMINGS * KBX_FIX_TIMING_RING + TIMINGS) * 4))
  readonly #reflexIo = new ReflexIo()
  readonly #timingsAddress = kbxAddress(this.#timings)
  /** struct kbx_fix_xdp_times, lent to the native loop: wake_at_ns in; tx_ns, rx_ns out of each step; spin_after_send_ns in. */
  readonly #times = new BigUint64Array(new ArrayBuffer(4 * 8))
  state = 'closed'

  private constructor(parts: { x: KbxFixXdpPtr; umem: Umem; socket: XskSocket; obj: BpfObject; link: ToolAttachment; reservation: Server; localIp: string; localPort: number; localMac: string; nextHopMac: string; spinAfterSendUs: number }) {
    this.#x = parts.x
    this.#address = kbxAddress(parts.x as never)
    this.#umem = parts.umem
    this.#socket = parts.socket
    this.#obj = parts.obj
    this.#link = parts.link
    this.#reservation = parts.reservation
    this.localIp = parts.localIp
    this.localPort = parts.localPort
    this.localMac = parts.localMac
    this.nextHopMac = parts.nextHopMac
    this.zeroCopy = parts.socket.zeroCopy
    this.xdpMode = parts.link.mode
    this.xdpLinkId = parts.link.id
    this.xdpProgId = parts.link.progId
    this.#times[3] = BigInt(Math.round(parts.spinAfterSendUs * 1000))
    const pacing = libkbxFixPacing()
    pacing.kbx_fix_xdp_set_times(parts.x, kbxAddress(Buffer.from(this.#times.buffer)))
    pacing.kbx_fix_precise_timers()
  }

  /** The next step's wait ends at this CLOCK_MONOTONIC time at the latest (0n: no deadline). */
  set wakeAtNs(ns: bigint) {
    this.#times[0] = ns
  }

  /** The last step handed the first frame of the bytes written before it to the TX ring then (0n: it sent none). */
  get txNs(): bigint {
    return this.#times[1]!
  }

  /** The last step took received frames then (0n: none). */
  get rxNs(): bigint {
    return this.#times[2]!
  }

  /**
   * Steering program attached, socket bound, SYN not sent yet (connect()). The UMEM and the AF_XDP socket are
   * made by @kbx/xsk, like every tool's, and lent to the native loop. Everything undone by close().
   */
  static async open(o: XdpConnectionOptions): Promise<XdpConnection> {
    const hop = resolveNextHop(o.remoteIp, { iface: o.iface })
    const { server: reservation, port: localPort } = await reservePort(hop.srcIp)
    const undo: (() => void)[] = [() => reservation.close()]
    try {
      raiseMemlockLimit()
      const umem = Umem.create({ frameCount: 4096, frameSize: 2048 })
      undo.push(() => umem.close())
      const obj = BpfObject.open(bpfObjectPath('fix_steer'))
      undo.push(() => obj.close())
      obj.setRodata('local_ip', wireIPv4(hop.srcIp))
      obj.setRodata('remote_ip', wireIPv4(o.remoteIp))
      obj.setRodata('local_port', localPort)
      obj.setRodata('remote_port', o.remotePort)
      obj.load()
      const socket = XskSocket.create({
        umem,
        iface: o.iface,
        queue: o.queue ?? 0,
        ...(o.mode === undefined ? {} : { mode: o.mode }),
        bindRetries: 20,
        retryDelayMs: 50,
        ...(o.log === undefined ? {} : { log: o.log }),
      })
      undo.push(() => socket.close())
      const lib = libkbxFixXdp()
      const out: [KbxFixXdpPtr | null] = [null]
      const rc = lib.kbx_fix_xdp_create(
        socket.address,
        {
          tcp: {
            local_mac: [...parseMac(hop.srcMac)],
            remote_mac: [...parseMac(hop.nextHopMac)],
            local_ip: wireIPv4(hop.srcIp).readUInt32LE(0),
            remote_ip: wireIPv4(o.remoteIp).readUInt32LE(0),
            local_port: localPort,
            remote_port: o.remotePort,
            isn: (Math.random() * 0x1_0000_0000) >>> 0,
            mss: 0,
            ecn: o.ecn === false ? 0 : 1,
            rcv_buf: 0,
            snd_buf: TX_CAPACITY,
            rto_min_us: 0,
            drop_tx_nth: o.dropTxNth ?? 0,
            keepalive_s: o.keepaliveS ?? 0,
          },
          busy_poll: o.busyPoll === true ? 1 : 0,
        },
        out,
      )
      if (rc < 0 || out[0] === null) throw nativeError(rc, 'create fix-tcp AF_XDP connection', { type: XskError })
      const x = out[0]
      undo.push(() => lib.kbx_fix_xdp_destroy(x))
      // Its own bpf_link, or one more program of kbx's dispatcher when the interface carries one.
      const link = attachOrJoin(obj, 'kbx_fix_steer', o.iface, o.mode ?? 'auto', { tool: 'fix-tcp', ...(o.log ? { log: o.log } : {}) })
      undo.push(() => link.detach())
      // this connection's 4-tuple (and ARP for our address) -> the socket
      steerTo(obj, [socket])
      return new XdpConnection({ x, umem, socket, obj, link, reservation, localIp: hop.srcIp, localPort, localMac: hop.srcMac, nextHopMac: hop.nextHopMac, spinAfterSendUs: o.spinAfterSendUs ?? 200 })
    } catch (err) {
      for (const step of undo.reverse()) step()
      throw err
    }
  }

  get #ptr(): KbxFixXdpPtr {
    if (this.#x === null) throw new XskError('use the fix-tcp AF_XDP connection', 9, { hint: 'it is closed' })
    return this.#x
  }

  /** Queues bytes for the next steps (the session's writes), in order; false only when 64 MiB wait already. */
  write(bytes: Uint8Array): boolean {
    return this.#staged.write(bytes)
  }

  get pendingBytes(): number {
    return this.#staged.pending
  }

  /** Bytes write() takes before anything waits behind the staging buffer. */
  get room(): number {
    return this.#staged.room
  }

  /**
   * The native reflex answers the armed ExecutionReport with the next order built from this template
   * (see reflex.ts); it only fires in a step armed for it.
   */
  configureReflex(template: ReflexTemplate): void {
    configureReflex(libkbxFixXdp().kbx_fix_xdp_reflex(this.#ptr), template, this.#reflexIo)
  }

  /**
   * ONE native call: queued bytes into the send buffer, timers, a batch of frames in, frames out, received
   * bytes back; with `arm`, the reflex may answer what arrives (reflexSent, reflexOrder()). The returned
   * view is valid until the next step.
   */
  step(timeoutMs: number, arm?: ReflexArm): Buffer {
    this.#ptr
    // bytes waiting behind the staging buffer come before any order of the reflex's
    this.#reflexIo.arm(this.#staged.queued > 0 ? undefined : arm)
    const rc = libkbxFixXdp().kbx_fix_xdp_step(this.#address, this.#txAddress, this.#staged.length, this.#rxAddress, RX_CAPACITY, timeoutMs, this.#resultAddress)
    if (rc < 0) throw nativeError(rc, 'fix-tcp AF_XDP step', { type: XskError })
    const rxBytes = this.#result.readUInt32LE(0)
    const accepted = this.#result.readUInt32LE(4)
    this.#staged.consume(accepted)
    this.state = KBX_TCP_STATE_NAMES[this.#result.readUInt32LE(16)] ?? 'closed'
    return this.#rx.subarray(0, rxBytes)
  }

  /** The last step sent a reflex order (reflexOrder()). */
  get reflexSent(): boolean {
    return this.#result.readUInt32LE(RESULT_REFLEX_SENT) === 1
  }

  reflexOrder(): ReflexOrder {
    return this.#reflexIo.sent()
  }

  reflexCounters(): ReflexCounters {
    return reflexCounters(libkbxFixXdp().kbx_fix_xdp_reflex(this.#ptr))
  }

  /** Timing samples waiting in the fullest native ring after the last step: drain before it fills. */
  get timingsWaiting(): number {
    return this.#result.readUInt32LE(RESULT_TIMINGS)
  }

  /**
   * ONE native call: the internal timing samples (ns) gathered since the last drain (native/include/kbx_fix.h),
   * "submitted" meaning the TX descriptor handed to the TX ring, before the kick. response: RX descriptors
   * taken → the reply TS wrote to those bytes submitted (crosses the FFI twice); native: its C share; kick:
   * the TX call (TX ring + sendto); reflex: RX descriptors taken → the reflex order submitted (C only);
   * reflexKick: its TX call. Views valid until the next drain.
   */
  drainTimings(): Record<(typeof KBX_FIX_TIMING_NAMES)[number], Uint32Array> {
    this.#ptr
    const ring = KBX_FIX_TIMING_RING
    const base = this.#timingsAddress
    libkbxFixXdp().kbx_fix_xdp_drain_timings(this.#address, base, base + TIMINGS * ring * 4, ring)
    const all = new Uint32Array(this.#timings.buffer, 0, TIMINGS * ring + TIMINGS)
    const out = {} as Record<(typeof KBX_FIX_TIMING_NAMES)[number], Uint32Array>
    KBX_FIX_TIMING_NAMES.forEach((name, i) => (out[name] = all.subarray(i * ring, i * ring + all[TIMINGS * ring + i]!)))
    return out
  }

  get established(): boolean {
    return this.state === 'established'
  }

  get closed(): boolean {
    return this.state === 'closed'
  }

  /** Active open: SYN (with MSS, window scale, ECN) now, handshake driven by step(). */
  connect(): void {
    const rc = libkbxFixXdp().kbx_fix_xdp_connect(this.#ptr)
    if (rc < 0) throw nativeError(rc, 'connect TCP')
    this.state = 'syn-sent'
  }

  /**
   * A new TCP connection on the same AF_XDP socket, UMEM and steering program (same 4-tuple; ISN beyond the
   * old connection's sequence space): the old one is dropped with whatever it held (send RST first with
   * abort() and a step if it may still be open), bytes staged for it are discarded (the FIX session resends
   * per the session rules), SYN at the next step. TCP counters keep summing over connections.
   */
  reconnect(): void {
    this.#staged.clear()
    const rc = libkbxFixXdp().kbx_fix_xdp_reconnect(this.#ptr, (Math.random() * 0x10000) >>> 0)
    if (rc < 0) throw nativeError(rc, 'reconnect TCP')
    this.state = 'syn-sent'
  }

  /** UMEM frame accounting after a frame-by-frame audit: every frame free, in a ring or held. */
  umemAccounting(): Record<string, number> {
    return { ...this.#umem.accounting() }
  }

  /** FIN after the queued data. */
  shutdown(): void {
    libkbxFixXdp().kbx_fix_xdp_shutdown(this.#ptr)
  }

  abort(): void {
    libkbxFixXdp().kbx_fix_xdp_abort(this.#ptr)
  }

  /** TCP counters for the JSON events (camelCase names of struct kbx_tcp_stats and the loop's counters). */
  stats(): Record<string, number | string | boolean> {
    const lib = libkbxFixXdp()
    lib.kbx_fix_xdp_tcp_stats(this.#ptr, this.#statsBuf)
    lib.kbx_fix_xdp_counters(this.#ptr, this.#countersBuf)
    const out: Record<string, number | string | boolean> = { io: 'xdp' }
    for (const [name, value] of Object.entries(readU64Fields(this.#statsBuf, KBX_TCP_STATS_FIELDS))) out[camel(name)] = value
    out['state'] = KBX_TCP_STATE_NAMES[out['state'] as number] ?? 'closed'
    out['closeReason'] = KBX_TCP_CLOSE_REASONS[out['closeReason'] as number] ?? 'open'
    out['ecn'] = out['ecn'] === 1
    const loop: Record<string, number> = {}
    for (const [name, value] of Object.entries(readU64Fields(this.#countersBuf, KBX_FIX_XDP_COUNTER_FIELDS))) loop[camel(name)] = value
    out['framesIn'] = loop['framesIn']!
    out['framesOut'] = loop['framesOut']!
    out['notOurs'] = loop['notOurs']!
    out['txRingFull'] = loop['txRingFull']!
    out['steps'] = loop['steps']!
    out['timingsLost'] = loop['timingsLost']!
    // frames the kernel could not hand us (RX ring full, no fill frame): lost before TCP saw them
    const xsk = this.#socket.statistics()
    out['xskRxDropped'] = Number(xsk.rxDropped)
    out['xskRxRingFull'] = Number(xsk.rxRingFull)
    out['xskFillRingEmpty'] = Number(xsk.fillRingEmpty)
    return out
  }

  /** Detaches the program (bpf_link), closes the native loop, socket, UMEM, object and the port reservation. */
  close(): void {
    if (this.#x !== null) {
      libkbxFixXdp().kbx_fix_xdp_destroy(this.#x)
      this.#x = null
    }
    if (this.#link !== null) {
      this.#link.detach()
      this.#link = null
      this.#obj.close()
      this.#socket.close()
      this.#umem.close()
      this.#reservation.close()
    }
  }
}
