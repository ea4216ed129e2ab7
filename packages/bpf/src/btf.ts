import {
  koffi,
  libbpf,
  BtfMember,
  BtfTypeHeader,
  BtfVarSecinfo,
  BTF_KIND_DATASEC,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
  type BtfPtr,
} from '@kbx/ffi'

/** Reading the BTF that libbpf parsed from an object (or loaded from the kernel by id). */

export interface BtfTypeInfo {
  id: number
  kind: number
  name: string
  vlen: number
  /** STRUCT/UNION: member offsets carry a bitfield size in their top 8 bits. */
  kindFlag: boolean
  /** size for STRUCT/UNION/INT/DATASEC..., referenced type id for PTR/TYPEDEF/VAR/CONST/VOLATILE/FUNC. */
  sizeOrType: number
}

export interface BtfField {
  name: string
  /** Bytes from the start of the struct. */
  offset: number
  size: number
  typeId: number
}

export interface BtfSectionVar {
  name: string
  offset: number
  size: number
  typeId: number
}

export function btfTypeInfo(btf: BtfPtr, id: number): BtfTypeInfo | undefined {
  const ptr = libbpf().btf__type_by_id(btf, id)
  if (!ptr) return undefined
  const header = koffi.decode(ptr, BtfTypeHeader) as { name_off: number; info: number; size_or_type: number }
  return {
    id,
    kind: (header.info >>> 24) & 0x1f,
    name: libbpf().btf__name_by_offset(btf, header.name_off) ?? '',
    vlen: header.info & 0xffff,
    kindFlag: header.info >>> 31 === 1,
    sizeOrType: header.size_or_type,
  }
}

/** Members of a struct or union (after typedefs/modifiers), with byte offsets and sizes. */
export function btfStructFields(btf: BtfPtr, typeId: number): BtfField[] {
  const lib = libbpf()
  const resolved = lib.btf__resolve_type(btf, typeId)
  const info = resolved > 0 ? btfTypeInfo(btf, resolved) : undefined
  if (!info || (info.kind !== BTF_KIND_STRUCT && info.kind !== BTF_KIND_UNION)) return []
  const ptr = lib.btf__type_by_id(btf, resolved)
  const members = koffi.decode(ptr, koffi.sizeof(BtfTypeHeader), BtfMember, info.vlen) as {
    name_off: number
    type: number
    offset: number
  }[]
  return members.map((m) => ({
    name: lib.btf__name_by_offset(btf, m.name_off) ?? '',
    offset: Math.floor((info.kindFlag ? m.offset & 0xffffff : m.offset) / 8),
    size: Number(lib.btf__resolve_size(btf, m.type)),
    typeId: m.type,
  }))
}

/** Variables of a data section (".rodata", ".data", ".bss") with offsets and sizes. */
export function btfSectionVars(btf: BtfPtr, section: string): BtfSectionVar[] {
  const lib = libbpf()
  const id = lib.btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC)
  if (id <= 0) return []
  const info = btfTypeInfo(btf, id)
  if (!info) return []
  const ptr = lib.btf__type_by_id(btf, id)
  const vars = koffi.decode(ptr, koffi.sizeof(BtfTypeHeader), BtfVarSecinfo, info.vlen) as {
    type: number
    offset: number
    size: number
  }[]
  return vars.map((v) => ({
    name: btfTypeInfo(btf, v.type)?.name ?? '',
    offset: v.offset,
    size: v.size,
    typeId: v.type,
  }))
}
