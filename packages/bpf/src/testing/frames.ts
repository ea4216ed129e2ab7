/** Frames for the XDP fixture tests, built with @kbx/net and patched where a test needs a broken header. */
import { buildArpFrame, buildTcpFrame, buildUdp6Frame, buildUdpFrame, internetChecksum, TcpFlags, type TcpSpec, type UdpSpec } from '@kbx/net'

export const ETH = 14
const MACS = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02' }
const PAYLOAD = Buffer.from('kbx fixture payload')

export function udp(over: Partial<UdpSpec> = {}): Buffer {
  return buildUdpFrame({ ...MACS, srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 40000, dstPort: 5000, payload: PAYLOAD, ...over })
}

export function tcp(over: Partial<TcpSpec> = {}): Buffer {
  return buildTcpFrame({
    ...MACS,
    srcIp: '10.0.0.1',
    dstIp: '10.0.0.2',
    srcPort: 40000,
    dstPort: 5000,
    seq: 1,
    ack: 0,
    flags: TcpFlags.SYN,
    window: 65535,
    payload: PAYLOAD,
    ...over,
  })
}

export function udp6(): Buffer {
  return buildUdp6Frame({ ...MACS, srcIp: 'fd00::1', dstIp: 'fd00::2', srcPort: 40000, dstPort: 5000, payload: PAYLOAD })
}

export function arp(op: 'request' | 'reply'): Buffer {
  return buildArpFrame({ op, senderMac: MACS.srcMac, senderIp: '10.0.0.1', targetMac: MACS.dstMac, targetIp: '10.0.0.2' })
}

/** Offset of the IPv4 header in a frame with n VLAN tags. */
export const l3Offset = (vlans = 0): number => ETH + 4 * vlans

/** Copy of frame with its IPv4 header changed by patch (header checksum recomputed). */
export function patchIpv4(frame: Buffer, patch: (ip: Buffer) => void, l3 = ETH): Buffer {
  const copy = Buffer.from(frame)
  const ip = copy.subarray(l3)
  patch(ip)
  const headerLength = (ip[0]! & 0x0f) * 4
  ip.writeUInt16BE(0, 10)
  if (headerLength >= 20 && headerLength <= ip.length) ip.writeUInt16BE(~internetChecksum(ip, 0, headerLength) & 0xffff, 10)
  return copy
}

/** Copy of frame with bytes at offset replaced. */
export function patchBytes(frame: Buffer, offset: number, bytes: number[]): Buffer {
  const copy = Buffer.from(frame)
  copy.set(bytes, offset)
  return copy
}

/** An IPv4 protocol other than UDP/TCP: the UDP frame relabelled as ICMP. */
export function icmpLike(): Buffer {
  return patchIpv4(udp(), (ip) => (ip[9] = 1))
}

/** Zero-padded to the 60-byte Ethernet minimum, so the frame is longer than IPv4 total length says. */
export function padded(frame: Buffer, length = 60): Buffer {
  const out = Buffer.alloc(Math.max(length, frame.length))
  frame.copy(out)
  return out
}

/** IPv4 options of n bytes (NOPs, then End of Option List). */
export function ipOptions(n: number): Buffer {
  const options = Buffer.alloc(n, 0x01)
  options[n - 1] = 0x00
  return options
}
