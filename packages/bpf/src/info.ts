import { libbpf, libc, koffi, BpfLinkInfo, BpfMapInfo, BpfProgInfo, BPF_LINK_TYPE_XDP } from '@kbx/ffi'
import { bpfError, errnoOf } from './errors.js'

/** What the kernel reports about loaded programs, maps and links (bpf_obj_get_info_by_fd). */

export interface ProgInfo {
  id: number
  /** Hex of the 8-byte program tag (a hash of the instructions), as bpftool prints it. */
  tag: string
  name: string
  /** libbpf's name of the program type, e.g. "xdp". */
  type: string
  typeId: number
  mapIds: number[]
  btfId: number
  xlatedLength: number
  jitedLength: number
  verifiedInsns: number
  /** Only counted while kernel.bpf_stats_enabled=1. */
  runCount: bigint
  runTimeNs: bigint
}

export interface MapInfo {
  id: number
  name: string
  /** libbpf's name of the map type, e.g. "percpu_array". */
  type: string
  typeId: number
  keySize: number
  valueSize: number
  maxEntries: number
  flags: number
  btfId: number
  btfKeyTypeId: number
  btfValueTypeId: number
}

export interface LinkInfo {
  id: number
  /** libbpf's name of the link type, e.g. "xdp". */
  type: string
  typeId: number
  progId: number
  /** XDP links: the interface the program is attached to (0 once the interface is gone). */
  ifindex?: number
}

function objectInfo<T>(fd: number, type: koffi.IKoffiCType, what: string, prepare?: (info: Record<string, unknown>) => void): T {
  const size = koffi.sizeof(type)
  const buf = Buffer.alloc(size)
  if (prepare) {
    const init: Record<string, unknown> = {}
    prepare(init)
    koffi.encode(buf, 0, type, init)
  }
  const length: [number] = [size]
  const ret = libbpf().bpf_obj_get_info_by_fd(fd, buf, length)
  if (ret !== 0) throw bpfError(`bpf_obj_get_info_by_fd (${what})`, errnoOf(ret))
  return koffi.decode(buf, type) as T
}

function cString(chars: unknown): string {
  if (typeof chars === 'string') return chars
  const bytes = Buffer.from(chars as Uint8Array)
  const end = bytes.indexOf(0)
  return bytes.toString('utf8', 0, end < 0 ? bytes.length : end)
}

interface RawProgInfo {
  type: number
  id: number
  tag: Uint8Array
  nr_map_ids: number
  name: unknown
  btf_id: number
  xlated_prog_len: number
  jited_prog_len: number
  verified_insns: number
  run_cnt: number | bigint
  run_time_ns: number | bigint
}

export function progInfoByFd(fd: number): ProgInfo {
  const first = objectInfo<RawProgInfo>(fd, BpfProgInfo, 'program')
  let mapIds: number[] = []
  if (first.nr_map_ids > 0) {
    const ids = new Uint32Array(first.nr_map_ids)
    objectInfo<RawProgInfo>(fd, BpfProgInfo, 'program', (init) => {
      init['nr_map_ids'] = ids.length
      init['map_ids'] = koffi.address(ids)
    })
    mapIds = [...ids]
  }
  return {
    id: first.id,
    tag: Buffer.from(first.tag).toString('hex'),
    name: cString(first.name),
    type: libbpf().libbpf_bpf_prog_type_str(first.type) ?? `type ${first.type}`,
    typeId: first.type,
    mapIds,
    btfId: first.btf_id,
    xlatedLength: first.xlated_prog_len,
    jitedLength: first.jited_prog_len,
    verifiedInsns: first.verified_insns,
    runCount: BigInt(first.run_cnt),
    runTimeNs: BigInt(first.run_time_ns),
  }
}

interface RawMapInfo {
  type: number
  id: number
  key_size: number
  value_size: number
  max_entries: number
  map_flags: number
  name: unknown
  btf_id: number
  btf_key_type_id: number
  btf_value_type_id: number
}

export function mapInfoByFd(fd: number): MapInfo {
  const raw = objectInfo<RawMapInfo>(fd, BpfMapInfo, 'map')
  return {
    id: raw.id,
    name: cString(raw.name),
    type: libbpf().libbpf_bpf_map_type_str(raw.type) ?? `type ${raw.type}`,
    typeId: raw.type,
    keySize: raw.key_size,
    valueSize: raw.value_size,
    maxEntries: raw.max_entries,
    flags: raw.map_flags,
    btfId: raw.btf_id,
    btfKeyTypeId: raw.btf_key_type_id,
    btfValueTypeId: raw.btf_value_type_id,
  }
}

interface RawLinkInfo {
  type: number
  id: number
  prog_id: number
  union: { xdp: { ifindex: number } }
}

export function linkInfoByFd(fd: number): LinkInfo {
  const raw = objectInfo<RawLinkInfo>(fd, BpfLinkInfo, 'link')
  return {
    id: raw.id,
    type: libbpf().libbpf_bpf_link_type_str(raw.type) ?? `type ${raw.type}`,
    typeId: raw.type,
    progId: raw.prog_id,
    ...(raw.type === BPF_LINK_TYPE_XDP ? { ifindex: raw.union.xdp.ifindex } : {}),
  }
}

function byId<T>(id: number, what: string, getFd: (id: number) => number, read: (fd: number) => T): T {
  const fd = getFd(id)
  if (fd < 0) {
    throw bpfError(`open ${what} id ${id}`, errnoOf(fd), { hint: `list them with \`bpftool ${what} show\`` })
  }
  try {
    return read(fd)
  } finally {
    libc().close(fd)
  }
}

export function progInfoById(id: number): ProgInfo {
  return byId(id, 'prog', (i) => libbpf().bpf_prog_get_fd_by_id(i), progInfoByFd)
}

export function mapInfoById(id: number): MapInfo {
  return byId(id, 'map', (i) => libbpf().bpf_map_get_fd_by_id(i), mapInfoByFd)
}

export function linkInfoById(id: number): LinkInfo {
  return byId(id, 'link', (i) => libbpf().bpf_link_get_fd_by_id(i), linkInfoByFd)
}

/** Info of a link pinned on bpffs (e.g. an XDP attachment kept by xdp-load): prog id, ifindex. */
export function linkInfoByPin(path: string): LinkInfo {
  const fd = libbpf().bpf_obj_get(path)
  if (fd < 0) throw bpfError(`open pinned link ${path}`, errnoOf(fd))
  try {
    return linkInfoByFd(fd)
  } finally {
    libc().close(fd)
  }
}
