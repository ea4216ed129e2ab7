import { UsageError } from '@kbx/errors'

/** One section of an ELF64 little-endian object (BPF objects are). */
export interface ElfSection {
  name: string
  type: number
  offset: number
  size: number
}

const SHT_NOBITS = 8

/** The sections of a BPF ELF object: enough to read its license and see whether it has code in .text. */
export function elfSections(bytes: Buffer, path: string): ElfSection[] {
  const bad = (why: string): UsageError =>
    new UsageError(`${path} is not a BPF ELF object (${why})`, { op: 'read BPF object', hint: 'build it with clang -target bpf -g -O2 -c' })
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) throw bad('no ELF magic')
  if (bytes[4] !== 2 || bytes[5] !== 1) throw bad('not 64-bit little-endian')
  const shoff = Number(bytes.readBigUInt64LE(0x28))
  const shentsize = bytes.readUInt16LE(0x3a)
  const shnum = bytes.readUInt16LE(0x3c)
  const shstrndx = bytes.readUInt16LE(0x3e)
  if (shoff + shnum * shentsize > bytes.length || shstrndx >= shnum) throw bad('section headers out of range')
  const header = (i: number) => {
    const at = shoff + i * shentsize
    return {
      nameOff: bytes.readUInt32LE(at),
      type: bytes.readUInt32LE(at + 4),
      offset: Number(bytes.readBigUInt64LE(at + 0x18)),
      size: Number(bytes.readBigUInt64LE(at + 0x20)),
    }
  }
  const names = header(shstrndx)
  const sections: ElfSection[] = []
  for (let i = 0; i < shnum; i++) {
    const h = header(i)
    const start = names.offset + h.nameOff
    const end = bytes.indexOf(0, start)
    sections.push({ name: bytes.toString('latin1', start, end < 0 ? start : end), type: h.type, offset: h.offset, size: h.type === SHT_NOBITS ? 0 : h.size })
  }
  return sections
}

/** The license string of a BPF object (its "license" section), or undefined when it has none. */
export function elfLicense(bytes: Buffer, path: string): string | undefined {
  const section = elfSections(bytes, path).find((s) => s.name === 'license')
  if (!section) return undefined
  const raw = bytes.subarray(section.offset, section.offset + section.size)
  const nul = raw.indexOf(0)
  return raw.toString('latin1', 0, nul < 0 ? raw.length : nul)
}

/**
 * Renames a symbol in place: every NUL-terminated occurrence of `from` (in .strtab and in the .BTF
 * strings) becomes `to` followed by NULs. `from` must be at least as long as `to`; the count of occurrences
 * must be `expected` (the template's placeholders each appear once in each table).
 */
export function renameInPlace(bytes: Buffer, from: string, to: string, expected: number): number {
  if (to.length > from.length) throw new UsageError(`name "${to}" is longer than ${from.length} characters`, { op: 'build dispatcher' })
  const needle = Buffer.from(`${from}\0`, 'latin1')
  const replacement = Buffer.alloc(needle.length)
  replacement.write(to, 'latin1')
  let count = 0
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + needle.length)) {
    // Only whole strings: the byte before must end the previous string.
    if (at > 0 && bytes[at - 1] !== 0) continue
    replacement.copy(bytes, at)
    count++
  }
  if (count !== expected) throw new UsageError(`dispatcher template: placeholder ${from} found ${count} times, expected ${expected}`, { op: 'build dispatcher', hint: 'rebuild it: make -C bpf' })
  return count
}
