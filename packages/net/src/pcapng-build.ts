// pcapng files built from a description: for tests and the capture fuzzer's structure-aware mutator (kbx
// itself writes classic pcap with PcapWriter).

export interface PcapngInterfaceSpec {
  linkType: number
  snapLength?: number
  /** if_tsresol's byte (default: none, microseconds): 9 = ns, 0x80 | n = 2^-n s. */
  tsresol?: number
  /** if_tsoffset in seconds. */
  tsoffset?: bigint
}

export interface PcapngPacketSpec {
  interfaceId: number
  /** Timestamp in the interface's units. */
  units: bigint
  data: Uint8Array
  originalLength?: number
  /** Enhanced Packet Block (default), Simple Packet Block or the obsolete Packet Block. */
  kind?: 'enhanced' | 'simple' | 'obsolete'
}

export interface PcapngSpec {
  littleEndian?: boolean
  interfaces: PcapngInterfaceSpec[]
  packets: PcapngPacketSpec[]
}

/** One block: type, total length, body padded to 4 bytes, total length again. */
export function pcapngBlock(type: number, body: Uint8Array, littleEndian = true): Buffer {
  const padded = (body.length + 3) & ~3
  const out = Buffer.alloc(12 + padded)
  const u32 = (v: number, at: number) => (littleEndian ? out.writeUInt32LE(v, at) : out.writeUInt32BE(v, at))
  u32(type, 0)
  u32(out.length, 4)
  out.set(body, 8)
  u32(out.length, out.length - 4)
  return out
}

/** A one-section pcapng file. */
export function buildPcapng(spec: PcapngSpec): Buffer {
  const le = spec.littleEndian ?? true
  const w = (bytes: number) => Buffer.alloc(bytes)
  const u16 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at))
  const u32 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at))
  const shb = w(16)
  u32(shb, 0x1a2b3c4d, 0)
  u16(shb, 1, 4)
  shb.writeBigInt64LE(-1n, 8)
  const blocks = [pcapngBlock(0x0a0d0d0a, shb, le)]
  for (const iface of spec.interfaces) {
    const options: Buffer[] = []
    if (iface.tsresol !== undefined) {
      const o = w(8)
      u16(o, 9, 0)
      u16(o, 1, 2)
      o[4] = iface.tsresol
      options.push(o)
    }
    if (iface.tsoffset !== undefined) {
      const o = w(12)
      u16(o, 14, 0)
      u16(o, 8, 2)
      if (le) o.writeBigInt64LE(iface.tsoffset, 4)
      else o.writeBigInt64BE(iface.tsoffset, 4)
      options.push(o)
    }
    if (options.length) options.push(w(4))
    const head = w(8)
    u16(head, iface.linkType, 0)
    u32(head, iface.snapLength ?? 262144, 4)
    blocks.push(pcapngBlock(1, Buffer.concat([head, ...options]), le))
  }
  for (const p of spec.packets) {
    const original = p.originalLength ?? p.data.length
    if (p.kind === 'simple') {
      const head = w(4)
      u32(head, original, 0)
      blocks.push(pcapngBlock(3, Buffer.concat([head, p.data]), le))
      continue
    }
    const head = w(20)
    if (p.kind === 'obsolete') {
      u16(head, p.interfaceId, 0)
      u16(head, 0, 2)
    } else u32(head, p.interfaceId, 0)
    u32(head, Number(p.units >> 32n), 4)
    u32(head, Number(p.units & 0xffffffffn), 8)
    u32(head, p.data.length, 12)
    u32(head, original, 16)
    blocks.push(pcapngBlock(p.kind === 'obsolete' ? 2 : 6, Buffer.concat([head, p.data]), le))
  }
  return Buffer.concat(blocks)
}
