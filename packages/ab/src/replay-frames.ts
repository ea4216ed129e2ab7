// ab-feed --replay's frames: captured packets taken out of their link layer, readdressed to the bed (or kept
// on their multicast group) with fresh IPv4 and UDP checksums, stored back to back once; the data path
// copies them into UMEM frames a TX batch per native call (native/src/ab_replay.c), no garbage per packet.
import { UsageError } from '@kbx/errors'
import { kbxAddress, koffi } from '@kbx/ffi'
import { EtherType, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, formatIPv4, multicastMac, parseFrame, udpFrameLength, writeUdpFrame, type CapturePacket, type UdpSpec } from '@kbx/net'
import type { TxBatch, Umem } from '@kbx/xsk'
import { KbxAbReplayLine, abError, arrayAddress, libkbxAb } from './native.js'

const ETHERTYPE_IPV4 = EtherType.IPv4

/** Why a captured packet is not replayed. */
export type SkipReason = 'notIpv4Udp' | 'fragment' | 'cutShort' | 'linkType'

export interface ReplayablePacket {
  /** Capture time, ns since the epoch. */
  tsNs: bigint
  /** The captured frame rebuilt as Ethernet (no VLAN) + IPv4 + UDP, addresses as captured. */
  frame: Buffer
}

export interface CaptureContents {
  packets: ReplayablePacket[]
  skipped: Record<SkipReason, number>
}

/** The IPv4 UDP packets of a capture, whatever its link type (Ethernet with VLANs, Linux cooked v1/v2, raw IP). */
export function replayablePackets(captured: readonly CapturePacket[]): CaptureContents {
  const skipped: Record<SkipReason, number> = { notIpv4Udp: 0, fragment: 0, cutShort: 0, linkType: 0 }
  const packets: ReplayablePacket[] = []
  for (const p of captured) {
    const frame = asEthernet(p)
    if (!frame) {
      skipped.linkType++
      continue
    }
    const parsed = parseFrame(frame)
    if (!parsed.ok || !parsed.ipv4 || (!parsed.udp && parsed.ipv4.protocol !== 17)) {
      skipped.notIpv4Udp++
      continue
    }
    if (parsed.ipv4.moreFragments || parsed.ipv4.fragmentOffset > 0) {
      skipped.fragment++
      continue
    }
    if (!parsed.udp || p.data.length < p.originalLength || parsed.payloadOffset + parsed.udp.length - 8 > frame.length) {
      skipped.cutShort++
      continue
    }
    packets.push({ tsNs: p.tsNs, frame })
  }
  return { packets, skipped }
}

/** The packet as an Ethernet frame (other link layers get a placeholder Ethernet header), or undefined. */
function asEthernet(p: CapturePacket): Buffer | undefined {
  const d = p.data
  let l3: number
  switch (p.linkType) {
    case LINKTYPE_ETHERNET:
      return d
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
      l3 = 0
      break
    case LINKTYPE_LINUX_SLL:
      if (d.length < 16 || d.readUInt16BE(14) !== ETHERTYPE_IPV4) return undefined
      l3 = 16
      break
    case LINKTYPE_LINUX_SLL2:
      if (d.length < 20 || d.readUInt16BE(0) !== ETHERTYPE_IPV4) return undefined
      l3 = 20
      break
    default:
      return undefined
  }
  if (d.length <= l3 || d[l3]! >> 4 !== 4) return undefined
  const frame = Buffer.alloc(14 + d.length - l3)
  frame.writeUInt16BE(ETHERTYPE_IPV4, 12)
  d.copy(frame, 14, l3)
  return frame
}

/** Where a line's packets go. */
export interface LineAddressing {
  srcMac: string
  /** The next hop's MAC towards dstIp. */
  dstMac: string
  srcIp: string
  dstIp: string
  /** Destination port of every packet; undefined keeps the captured one. */
  dstPort: number | undefined
  /** Packets to a multicast group keep their group, its MAC and their port. */
  keepMulticast: boolean
}

/** A line's packets readdressed, back to back: packet p is bytes[offsets[p], offsets[p + 1]). */
export interface PreparedFrames {
  bytes: Buffer
  offsets: Uint32Array
  /** Packets that kept their multicast destination. */
  multicast: number
}

export function prepareFrames(packets: readonly ReplayablePacket[], to: LineAddressing): PreparedFrames {
  const specs: UdpSpec[] = []
  let multicast = 0
  for (const { frame } of packets) {
    const f = parseFrame(frame)
    if (!f.ok || !f.ipv4 || !f.udp) throw new Error('replayablePackets let a frame through that is not IPv4 UDP')
    const group = to.keepMulticast && f.ipv4.dstAddr >>> 28 === 0xe
    if (group) multicast++
    specs.push({
      srcMac: to.srcMac,
      dstMac: group ? multicastMac(f.ipv4.dstAddr) : to.dstMac,
      srcIp: to.srcIp,
      dstIp: group ? formatIPv4(f.ipv4.dstAddr) : to.dstIp,
      ttl: f.ipv4.ttl,
      tos: f.ipv4.tos,
      id: f.ipv4.id,
      dontFragment: f.ipv4.dontFragment,
      ...(f.ipv4.options.length ? { options: f.ipv4.options } : {}),
      srcPort: f.udp.srcPort,
      dstPort: group || to.dstPort === undefined ? f.udp.dstPort : to.dstPort,
      payload: frame.subarray(f.udp.offset + 8, f.udp.offset + f.udp.length),
    })
  }
  const offsets = new Uint32Array(specs.length + 1)
  for (const [i, spec] of specs.entries()) offsets[i + 1] = offsets[i]! + udpFrameLength(spec)
  const bytes = Buffer.alloc(offsets[specs.length]!)
  for (const [i, spec] of specs.entries()) writeUdpFrame(bytes, offsets[i]!, spec)
  return { bytes, offsets, multicast }
}

const OFFSET = Object.fromEntries(
  (['frames', 'offsets', 'entries', 'due_ns', 'packets', 'len', 'next', 'up_to_ns', 'bytes'] as const).map((name) => [name, koffi.offsetof(KbxAbReplayLine, name)]),
) as Record<'frames' | 'offsets' | 'entries' | 'due_ns' | 'packets' | 'len' | 'next' | 'up_to_ns' | 'bytes', number>


/** One line's send list over its prepared frames, written into TX batches one native call each. */
export class ReplayLineWriter {
  private readonly line = Buffer.alloc(koffi.sizeof(KbxAbReplayLine))
  private readonly lineAddress = kbxAddress(this.line)

  constructor(
    readonly frames: PreparedFrames,
    /** The packet each send carries, in send order. */
    readonly entries: Uint32Array,
    /** When each send is due, ns after the start of a pass. */
    readonly dueNs: Float64Array,
    private readonly umem: Umem,
  ) {
    if (entries.length !== dueNs.length) throw new UsageError('a replay send list needs one due time per entry', { op: 'prepare replay' })
    for (const p of entries) if (p >= frames.offsets.length - 1) throw new UsageError(`replay entry names packet ${p} of ${frames.offsets.length - 1}`, { op: 'prepare replay' })
    const l = this.line
    l.writeBigUInt64LE(BigInt(arrayAddress(frames.bytes)), OFFSET.frames)
    l.writeBigUInt64LE(BigInt(arrayAddress(frames.offsets)), OFFSET.offsets)
    l.writeBigUInt64LE(BigInt(arrayAddress(entries)), OFFSET.entries)
    l.writeBigUInt64LE(BigInt(arrayAddress(dueNs)), OFFSET.due_ns)
    l.writeUInt32LE(frames.offsets.length - 1, OFFSET.packets)
    l.writeUInt32LE(entries.length, OFFSET.len)
    this.rewind()
  }

  /** Starts a pass over the send list again (--loop). */
  rewind(): void {
    this.line.writeUInt32LE(0, OFFSET.next)
  }

  /** The first send not yet written in this pass. */
  get next(): number {
    return this.line.readUInt32LE(OFFSET.next)
  }

  get done(): boolean {
    return this.next >= this.entries.length
  }

  /** When the next send is due (Infinity when the pass is written). */
  get nextDueNs(): number {
    return this.done ? Infinity : this.dueNs[this.next]!
  }

  /** Appends the sends due by `upToNs` (as many as the batch has room for); returns how many. */
  fill(batch: TxBatch, upToNs: number): number {
    this.line.writeDoubleLE(upToNs, OFFSET.up_to_ns)
    const rc = libkbxAb().kbx_ab_replay_fill(this.umem.address, batch.batchAddress, this.lineAddress)
    if (rc < 0) throw abError(rc, 'write replayed frames')
    return rc
  }
}
