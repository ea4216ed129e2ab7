// A crafted peer for the userspace TCP's unit tests (tcp*.unit.test.ts): segments from the peer as frames, our
// frames parsed, and a connection driven to ESTABLISHED. No sockets.
import { TcpFlags, buildTcpFrame, parseFrame } from '@kbx/net'
import type { ParsedFrameOk } from '@kbx/net'
import { UserTcp } from './tcp.js'

/** What established() needs of a tap test: the connection is closed at its end. */
export interface Teardown {
  teardown(fn: () => void): void
}

export const US = { mac: '02:00:00:00:00:01', ip: '10.9.0.1', port: 40000 }
export const PEER = { mac: '02:00:00:00:00:02', ip: '10.9.0.2', port: 9878 }
export const ISN = 0xfffff000 // wraps during the tests
export const IRS = 5000
export const MSS = 1000
export const S = 1_000_000_000n

const { SYN, ACK, ECE } = TcpFlags

export interface Seg {
  seq: number
  ack?: number
  flags: number
  window?: number
  payload?: Uint8Array
  options?: Buffer
  tos?: number
  badChecksum?: boolean
  srcPort?: number
}

export function segment(s: Seg): Buffer {
  const frame = buildTcpFrame({
    srcMac: PEER.mac,
    dstMac: US.mac,
    srcIp: PEER.ip,
    dstIp: US.ip,
    srcPort: s.srcPort ?? PEER.port,
    dstPort: US.port,
    seq: s.seq >>> 0,
    ack: (s.ack ?? 0) >>> 0,
    flags: s.flags,
    window: s.window ?? 65535,
    ...(s.options === undefined ? {} : { options: s.options }),
    ...(s.payload === undefined ? {} : { payload: s.payload }),
    ...(s.tos === undefined ? {} : { tos: s.tos }),
  })
  if (s.badChecksum) frame[frame.length - 1]! ^= 0xff
  return frame
}

export function parse(frames: Buffer[]): ParsedFrameOk[] {
  return frames.map((f) => {
    const p = parseFrame(f)
    if (!p.ok) throw new Error(p.error)
    return p
  })
}

export const wsOption = (mss: number, ws: number) => Buffer.from([2, 4, mss >> 8, mss & 0xff, 1, 3, 3, ws, 0, 0, 0, 0])

export interface Conn {
  tcp: UserTcp
  now: bigint
  out: () => ParsedFrameOk[]
  feed: (s: Seg) => ParsedFrameOk[]
  /** Next sequence number the peer sends. */
  peerSeq: number
}

export function established(t: Teardown, options: { window?: number; ws?: number; ecn?: boolean; dropTxNth?: number; synOptions?: Buffer; isn?: number; irs?: number; rcvBuf?: number; keepaliveS?: number } = {}): Conn {
  const isn = options.isn ?? ISN
  const tcp = UserTcp.create({ local: US, remote: PEER, isn, mss: MSS, ecn: options.ecn ?? false, rtoMinUs: 200_000, ...(options.dropTxNth === undefined ? {} : { dropTxNth: options.dropTxNth }), ...(options.rcvBuf === undefined ? {} : { rcvBuf: options.rcvBuf }), ...(options.keepaliveS === undefined ? {} : { keepaliveS: options.keepaliveS }) })
  t.teardown(() => tcp.close())
  const c: Conn = {
    tcp,
    now: 1n * S,
    out: () => parse(tcp.frames()),
    feed: (s) => {
      tcp.input(segment(s), c.now)
      return c.out()
    },
    peerSeq: ((options.irs ?? IRS) + 1) >>> 0,
  }
  tcp.connect(c.now)
  c.out()
  const reply = c.feed({ seq: options.irs ?? IRS, ack: isn + 1, flags: SYN | ACK | (options.ecn ? ECE : 0), window: options.window ?? 65535, options: options.synOptions ?? wsOption(1400, options.ws ?? 7) })
  if (tcp.stats().stateName !== 'established') throw new Error(`not established: ${tcp.stats().stateName}`)
  if (reply.length !== 1) throw new Error('expected the handshake ACK')
  return c
}
