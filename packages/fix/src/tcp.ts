// The userspace TCP connection (native/src/tcp_conn.c, tcp_input.c) for the control path and tests: frames in and
// out as Buffers. The AF_XDP data path drives the same C code from a native batch loop.
import { KBX_TCP_CLOSE_REASONS, KBX_TCP_SEQ_FIELDS, KBX_TCP_STATE_NAMES, KBX_TCP_STATS_FIELDS, libkbxTcp } from './native.js'
import type { KbxTcpPtr } from './native.js'
import { SystemError } from '@kbx/errors'
import { nativeError, readU64Fields } from '@kbx/ffi'
import { parseIPv4, parseMac } from '@kbx/net'

export interface TcpEndpoint {
  mac: string
  ip: string
  port: number
}

export interface UserTcpOptions {
  local: TcpEndpoint
  remote: TcpEndpoint
  isn?: number
  mss?: number
  ecn?: boolean
  rcvBuf?: number
  sndBuf?: number
  rtoMinUs?: number
  /** Test hook: drop the Nth new data segment (1-based). */
  dropTxNth?: number
  /** Keep-alive probes after this many idle seconds (kbx_tcp_config.keepalive_s); 0 or absent: none. */
  keepaliveS?: number
}

export type TcpStateName = (typeof KBX_TCP_STATE_NAMES)[number]
export type TcpStats = Record<(typeof KBX_TCP_STATS_FIELDS)[number], number> & { stateName: TcpStateName; closeReason: string }

const FRAME_CAPACITY = 2048

/** IPv4 address as the u32 whose little-endian bytes are the address in network order. */
function networkOrder(ip: string): number {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(parseIPv4(ip))
  return b.readUInt32LE(0)
}

export class UserTcp {
  private handle: KbxTcpPtr | null
  private readonly frameBuf = Buffer.alloc(FRAME_CAPACITY)
  private readonly statsBuf = Buffer.alloc(KBX_TCP_STATS_FIELDS.length * 8)
  private readonly seqBuf = Buffer.alloc(KBX_TCP_SEQ_FIELDS.length * 4)

  private constructor(handle: KbxTcpPtr) {
    this.handle = handle
  }

  static create(o: UserTcpOptions): UserTcp {
    const handle = libkbxTcp().kbx_tcp_create({
      local_mac: [...parseMac(o.local.mac)],
      remote_mac: [...parseMac(o.remote.mac)],
      local_ip: networkOrder(o.local.ip),
      remote_ip: networkOrder(o.remote.ip),
      local_port: o.local.port,
      remote_port: o.remote.port,
      isn: (o.isn ?? (Math.random() * 0x1_0000_0000) >>> 0) >>> 0,
      mss: o.mss ?? 0,
      ecn: o.ecn ? 1 : 0,
      rcv_buf: o.rcvBuf ?? 0,
      snd_buf: o.sndBuf ?? 0,
      rto_min_us: o.rtoMinUs ?? 0,
      drop_tx_nth: o.dropTxNth ?? 0,
      keepalive_s: o.keepaliveS ?? 0,
    })
    if (handle === null) throw new SystemError('create userspace TCP connection', 12)
    return new UserTcp(handle)
  }

  private get h(): KbxTcpPtr {
    if (this.handle === null) throw new Error('UserTcp is closed')
    return this.handle
  }

  connect(nowNs: bigint): void {
    const rc = libkbxTcp().kbx_tcp_connect(this.h, nowNs)
    if (rc < 0) throw nativeError(rc, 'connect TCP')
  }

  /** True when the frame belonged to this connection (or was ARP for our address). */
  input(frame: Uint8Array, nowNs: bigint): boolean {
    return libkbxTcp().kbx_tcp_input(this.h, frame, frame.length, nowNs) === 1
  }

  poll(nowNs: bigint): void {
    libkbxTcp().kbx_tcp_poll(this.h, nowNs)
  }

  /** Bytes accepted into the send buffer. */
  write(data: Uint8Array): number {
    const rc = libkbxTcp().kbx_tcp_write(this.h, data, data.length)
    if (rc < 0) throw nativeError(rc, 'write to TCP')
    return rc
  }

  read(max = 65536): Buffer {
    const out = Buffer.alloc(max)
    const n = libkbxTcp().kbx_tcp_read(this.h, out, max)
    return out.subarray(0, n)
  }

  shutdown(): void {
    libkbxTcp().kbx_tcp_shutdown(this.h)
  }

  abort(): void {
    libkbxTcp().kbx_tcp_abort(this.h)
  }

  /** true: the ACK for received data waits for the next segment we send (piggybacked) or for holdAck(false). */
  holdAck(hold: boolean): void {
    libkbxTcp().kbx_tcp_hold_ack(this.h, hold ? 1 : 0)
  }

  /** Every frame waiting to be transmitted (copies). */
  frames(): Buffer[] {
    const out: Buffer[] = []
    for (;;) {
      const n = libkbxTcp().kbx_tcp_next_frame(this.h, this.frameBuf, FRAME_CAPACITY)
      if (n <= 0) return out
      out.push(Buffer.from(this.frameBuf.subarray(0, n)))
    }
  }

  stats(): TcpStats {
    libkbxTcp().kbx_tcp_get_stats(this.h, this.statsBuf)
    const s = readU64Fields(this.statsBuf, KBX_TCP_STATS_FIELDS)
    return { ...s, stateName: KBX_TCP_STATE_NAMES[s.state] ?? 'closed', closeReason: KBX_TCP_CLOSE_REASONS[s.close_reason] ?? 'open' }
  }

  /** The sequence variables (struct kbx_tcp_seq): for invariant checks. */
  seq(): Record<(typeof KBX_TCP_SEQ_FIELDS)[number], number> {
    libkbxTcp().kbx_tcp_get_seq(this.h, this.seqBuf)
    const s = {} as Record<(typeof KBX_TCP_SEQ_FIELDS)[number], number>
    KBX_TCP_SEQ_FIELDS.forEach((name, i) => (s[name] = this.seqBuf.readUInt32LE(i * 4)))
    return s
  }

  close(): void {
    if (this.handle === null) return
    libkbxTcp().kbx_tcp_destroy(this.handle)
    this.handle = null
  }
}
