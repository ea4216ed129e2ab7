import { UsageError } from '@kbx/errors'
import { elfSections } from './elf.js'

const BTF_MAGIC = 0xeb9f
const BTF_KIND_FUNC = 12
const BTF_KIND_VAR = 14
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Bytes each BTF kind carries after its 12-byte btf_type (vlen = the low 16 bits of info). */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case 1: // INT
    case 14: // VAR
    case 17: // DECL_TAG
      return 4
    case 3: // ARRAY
      return 12
    case 4: // STRUCT
    case 5: // UNION
    case 15: // DATASEC
    case 19: // ENUM64
      return 12 * vlen
    case 6: // ENUM
    case 13: // FUNC_PROTO
      return 8 * vlen
    default: // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
      return 0
  }
}

/**
 * The object's .BTF with VARs and FUNCs renamed (old name → new): new names are appended to the string
 * table and the types point at them (a string another type shares keeps its old text). The caller swaps it
 * in with `llvm-objcopy --update-section .BTF=… --redefine-sym old=new`, so ELF symbol and BTF agree —
 * what libbpf's linker checks.
 */
export function renameBtfGlobals(object: Buffer, path: string, renames: ReadonlyMap<string, string>): Buffer {
  for (const to of renames.values()) if (!NAME_RE.test(to)) throw new UsageError(`"${to}" is not a C identifier`, { op: 'rename BTF global' })
  const section = elfSections(object, path).find((s) => s.name === '.BTF')
  if (!section) throw new UsageError(`${path} has no .BTF section`, { op: 'rename BTF global', hint: 'build it with clang -g' })
  const btf = Buffer.from(object.subarray(section.offset, section.offset + section.size))
  if (btf.readUInt16LE(0) !== BTF_MAGIC) throw new UsageError(`${path}: .BTF is not little-endian BTF`, { op: 'rename BTF global' })
  const hdrLen = btf.readUInt32LE(4)
  const typeOff = btf.readUInt32LE(8)
  const typeLen = btf.readUInt32LE(12)
  const strOff = btf.readUInt32LE(16)
  const strLen = btf.readUInt32LE(20)
  if (strOff < typeOff + typeLen || hdrLen + strOff + strLen !== btf.length) {
    throw new UsageError(`${path}: .BTF strings are not at its end`, { op: 'rename BTF global' })
  }
  const strings = btf.subarray(hdrLen + strOff, hdrLen + strOff + strLen)
  const nameAt = (off: number): string => strings.toString('latin1', off, strings.indexOf(0, off))

  const appended: Buffer[] = []
  let nextOff = strLen
  const renamed = new Set<string>()
  for (let at = hdrLen + typeOff, end = hdrLen + typeOff + typeLen; at < end; ) {
    const info = btf.readUInt32LE(at + 4)
    const kind = (info >>> 24) & 0x1f
    if (kind === BTF_KIND_VAR || kind === BTF_KIND_FUNC) {
      const to = renames.get(nameAt(btf.readUInt32LE(at)))
      if (to !== undefined) {
        btf.writeUInt32LE(nextOff, at)
        appended.push(Buffer.from(`${to}\0`, 'latin1'))
        nextOff += to.length + 1
        renamed.add(to)
      }
    }
    at += 12 + extraBytes(kind, info & 0xffff)
  }
  const missing = [...renames].filter(([, to]) => !renamed.has(to)).map(([from]) => from)
  if (missing.length) throw new UsageError(`${path}: no BTF variable or function named ${missing.join(', ')}`, { op: 'rename BTF global' })
  const head = Buffer.from(btf.subarray(0, hdrLen + strOff + strLen))
  head.writeUInt32LE(nextOff, 20)
  return Buffer.concat([head, ...appended])
}
