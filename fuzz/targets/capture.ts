/**
 * Target `capture`: @kbx/net's capture reader (packages/net/src/pcapng.ts parseCapture: pcapng, and classic
 * pcap through pcap.ts), which ab-feed --replay runs on files users hand it. Invariants: it returns or throws
 * a UsageError (exit 2), never anything else (no RangeError from a read past the end, no TypeError); every
 * packet's bytes occur in the input; and a file that reads reads the same cut anywhere past its first 24
 * bytes: the packets of the whole blocks before the cut (a prefix of the whole file's, byte for byte),
 * marked truncated when the cut is inside a block. Inputs: the corpus (pcap and pcapng from PcapWriter,
 * editcap and tshark), byte mutations, and structure-aware ones: files rebuilt from a description with
 * random byte orders, resolutions, offsets, block kinds, link types and lengths, then blocks duplicated,
 * dropped or with a length field bent.
 */
import { UsageError } from '@kbx/errors'
import { buildPcapng, parseCapture, pcapngBlock, type CaptureFile, type PcapngPacketSpec } from '@kbx/net'
import { FuzzFinding, targetMain, type Rng, type TargetHarness } from '../engine.js'

function read(input: Buffer): CaptureFile | undefined {
  try {
    return parseCapture(input, 'input')
  } catch (e) {
    if (e instanceof UsageError) return undefined
    throw new FuzzFinding('unexpected-exception', `${(e as Error).name}: ${(e as Error).message}`)
  }
}

/** A cut point from the bytes (FNV-1a), so a replay cuts where the run did. */
function cutOf(input: Buffer): number {
  let h = 2166136261
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input[i]!, 16777619) >>> 0
  return 24 + (h % Math.max(1, input.length - 24))
}

const harness: TargetHarness = {
  maxInputSize: 1 << 16,
  execute(input) {
    const whole = read(input)
    if (!whole) return 'refused'
    for (const [i, p] of whole.packets.entries()) {
      if (p.data.length > 0 && input.indexOf(p.data) < 0) throw new FuzzFinding('bytes-not-in-input', `packet ${i} of ${p.data.length} bytes does not occur in the input`)
      if (typeof p.tsNs !== 'bigint' || !Number.isInteger(p.originalLength) || !Number.isInteger(p.linkType)) throw new FuzzFinding('bad-field', `packet ${i}: ${JSON.stringify({ ...p, tsNs: String(p.tsNs), data: undefined })}`)
    }
    if (input.length > 24) {
      const cut = cutOf(input)
      const prefix = read(input.subarray(0, cut))
      if (!prefix) throw new FuzzFinding('prefix-refused', `the whole input reads, its first ${cut} bytes do not`)
      if (prefix.packets.length > whole.packets.length) throw new FuzzFinding('prefix-more-packets', `${prefix.packets.length} packets in the first ${cut} bytes, ${whole.packets.length} in all`)
      for (const [i, p] of prefix.packets.entries()) {
        const q = whole.packets[i]!
        // A simple packet block carries no length of its own: cut short, the bytes it has are the packet.
        if (p.tsNs !== q.tsNs || (!p.data.equals(q.data) && !(q.data.subarray(0, p.data.length).equals(p.data) && i === prefix.packets.length - 1)))
          throw new FuzzFinding('prefix-differs', `packet ${i} of the first ${cut} bytes differs from the whole input's`)
      }
    }
    return `${whole.format}:${Math.min(whole.packets.length, 4)}:${whole.truncated}:${[...new Set(whole.packets.map((p) => p.linkType))].slice(0, 3).join(',')}`
  },
  mutate(input, rng) {
    if (rng.chance(0.5)) return generate(rng)
    const blocks = splitBlocks(input)
    if (blocks.length === 0) return generate(rng)
    const i = rng.int(blocks.length)
    switch (rng.int(4)) {
      case 0:
        blocks.splice(i, 0, blocks[i]!)
        break
      case 1:
        blocks.splice(i, 1)
        break
      case 2: {
        const b = Buffer.from(blocks[i]!)
        if (b.length >= 8) b.writeUInt32LE(rng.pick([0, 8, 12, 13, b.length + 4, b.length - 4, 0xffffffff]), 4)
        blocks[i] = b
        break
      }
      default:
        blocks.splice(i, 0, pcapngBlock(rng.pick([2, 3, 4, 5, 6, 0x0bad]), Buffer.alloc(rng.int(40), rng.int(256))))
    }
    return Buffer.concat(blocks)
  },
}

/** The blocks of a pcapng input, as far as their little-endian lengths go. */
function splitBlocks(input: Buffer): Buffer[] {
  const blocks: Buffer[] = []
  for (let p = 0; p + 12 <= input.length; ) {
    const length = input.readUInt32LE(p + 4)
    if (length < 12 || p + length > input.length) break
    blocks.push(input.subarray(p, p + length))
    p += length
  }
  return blocks
}

function generate(rng: Rng): Buffer {
  const interfaces = Array.from({ length: rng.int(3) }, () => ({
    linkType: rng.pick([1, 101, 113, 228, 276, 0xffff]),
    snapLength: rng.pick([0, 64, 262144]),
    ...(rng.chance(0.5) ? { tsresol: rng.pick([0, 3, 6, 9, 18, 19, 0x80 | 10, 0x80 | 63, 0xff]) } : {}),
    ...(rng.chance(0.3) ? { tsoffset: BigInt(rng.int(1 << 20)) - 1000n } : {}),
  }))
  const packets: PcapngPacketSpec[] = Array.from({ length: rng.int(5) }, () => {
    const data = Buffer.alloc(rng.int(100), rng.int(256))
    return {
      interfaceId: rng.chance(0.9) ? rng.int(Math.max(1, interfaces.length)) : rng.int(5),
      units: rng.u64(),
      data,
      originalLength: rng.chance(0.8) ? data.length : rng.int(1 << 16),
      kind: rng.pick(['enhanced', 'enhanced', 'simple', 'obsolete'] as const),
    }
  })
  return buildPcapng({ littleEndian: rng.chance(0.7), interfaces, packets })
}

targetMain('capture', harness, process.argv.slice(2))
