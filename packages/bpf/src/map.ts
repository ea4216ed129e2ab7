import { existsSync } from 'node:fs'
import { UsageError } from '@kbx/errors'
import {
  libbpf,
  libc,
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
  BPF_MAP_TYPE_PERCPU_HASH,
  type BpfMapPtr,
} from '@kbx/ffi'
import { btfStructFields, type BtfField } from './btf.js'
import { bpfError, errnoOf } from './errors.js'
import { mapInfoByFd, type MapInfo } from './info.js'
import { unpinPath } from './system.js'

export type UpdateFlag = 'any' | 'noexist' | 'exist'

const updateFlags: Record<UpdateFlag, number> = { any: BPF_ANY, noexist: BPF_NOEXIST, exist: BPF_EXIST }
const perCpuTypes = new Set([
  BPF_MAP_TYPE_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
])
const ENOENT = 2

let possibleCpus: number | undefined

/** Number of possible CPUs: the number of slots a per-CPU map value has. */
export function numPossibleCpus(): number {
  if (possibleCpus === undefined) {
    const n = libbpf().libbpf_num_possible_cpus()
    if (n <= 0) throw bpfError('libbpf_num_possible_cpus', errnoOf(n))
    possibleCpus = n
  }
  return possibleCpus
}

interface MapSource {
  fd: number
  name: string
  typeId: number
  keySize: number
  valueSize: number
  maxEntries: number
  ownsFd: boolean
}

/**
 * A BPF map by fd. Maps of a BpfObject belong to it (closed with it); maps from fromPin/fromId own their fd.
 * Keys and values are raw bytes in the map's layout (host byte order for integers).
 */
export class BpfMap {
  readonly name: string
  readonly fd: number
  /** libbpf's name of the map type, e.g. "hash", "percpu_array", "xskmap". */
  readonly type: string
  readonly typeId: number
  readonly keySize: number
  readonly valueSize: number
  readonly maxEntries: number
  readonly perCpu: boolean
  private readonly ownsFd: boolean
  private closed = false

  /** @internal use BpfObject.map, BpfMap.fromPin or BpfMap.fromId */
  constructor(source: MapSource) {
    this.fd = source.fd
    this.name = source.name
    this.typeId = source.typeId
    this.type = libbpf().libbpf_bpf_map_type_str(source.typeId) ?? `type ${source.typeId}`
    this.keySize = source.keySize
    this.valueSize = source.valueSize
    this.maxEntries = source.maxEntries
    this.perCpu = perCpuTypes.has(source.typeId)
    this.ownsFd = source.ownsFd
  }

  /** @internal */
  static fromLibbpf(map: BpfMapPtr, name?: string): BpfMap {
    const lib = libbpf()
    return new BpfMap({
      fd: lib.bpf_map__fd(map),
      name: name ?? lib.bpf_map__name(map),
      typeId: lib.bpf_map__type(map),
      keySize: lib.bpf_map__key_size(map),
      valueSize: lib.bpf_map__value_size(map),
      maxEntries: lib.bpf_map__max_entries(map),
      ownsFd: false,
    })
  }

  /** Take ownership of a map fd (closed by close()). */
  static fromFd(fd: number): BpfMap {
    const info = mapInfoByFd(fd)
    return new BpfMap({ fd, name: info.name, typeId: info.typeId, keySize: info.keySize, valueSize: info.valueSize, maxEntries: info.maxEntries, ownsFd: true })
  }

  /** Open a map pinned on bpffs. */
  static fromPin(path: string): BpfMap {
    const fd = libbpf().bpf_obj_get(path)
    if (fd < 0) {
      const errno = errnoOf(fd)
      throw bpfError(`open pinned map ${path}`, errno, {
        hint: errno === ENOENT ? (existsSync(path) ? undefined : 'nothing is pinned there; is bpffs mounted (ensureBpffs)?') : undefined,
      })
    }
    try {
      return BpfMap.fromFd(fd)
    } catch (err) {
      libc().close(fd)
      throw err
    }
  }

  /** Open a map by its kernel id (bpftool map show). */
  static fromId(id: number): BpfMap {
    const fd = libbpf().bpf_map_get_fd_by_id(id)
    if (fd < 0) throw bpfError(`open map id ${id}`, errnoOf(fd))
    try {
      return BpfMap.fromFd(fd)
    } catch (err) {
      libc().close(fd)
      throw err
    }
  }

  info(): MapInfo {
    return mapInfoByFd(this.checkedFd())
  }

  /** Bytes one lookup returns: valueSize, or for per-CPU maps valueSize rounded up to 8 times the CPU count. */
  get lookupSize(): number {
    return this.perCpu ? this.perCpuStride * numPossibleCpus() : this.valueSize
  }

  private get perCpuStride(): number {
    return Math.ceil(this.valueSize / 8) * 8
  }

  /** The value for key, or undefined when there is none. Per-CPU maps: use lookupPerCpu or sumPerCpuU64. */
  lookup(key: Uint8Array): Buffer | undefined {
    if (this.perCpu) throw new UsageError(`map ${this.name} is per-CPU: use lookupPerCpu() or sumPerCpuU64()`)
    return this.lookupRaw(key)
  }

  /** One value per possible CPU. */
  lookupPerCpu(key: Uint8Array): Buffer[] | undefined {
    if (!this.perCpu) throw new UsageError(`map ${this.name} is not per-CPU: use lookup()`)
    const raw = this.lookupRaw(key)
    if (!raw) return undefined
    const values: Buffer[] = []
    for (let cpu = 0; cpu < numPossibleCpus(); cpu++) {
      values.push(raw.subarray(cpu * this.perCpuStride, cpu * this.perCpuStride + this.valueSize))
    }
    return values
  }

  /** The value read as consecutive u64 fields, each summed over all CPUs (counters). */
  sumPerCpuU64(key: Uint8Array): bigint[] {
    const values = this.lookupPerCpu(key)
    const fields = Math.floor(this.valueSize / 8)
    const sums = new Array<bigint>(fields).fill(0n)
    for (const value of values ?? []) {
      for (let i = 0; i < fields; i++) sums[i] = (sums[i] ?? 0n) + value.readBigUInt64LE(i * 8)
    }
    return sums
  }

  private lookupRaw(key: Uint8Array): Buffer | undefined {
    this.checkKey(key)
    const value = Buffer.alloc(this.lookupSize)
    const ret = libbpf().bpf_map_lookup_elem(this.checkedFd(), key, value)
    if (ret === 0) return value
    const errno = errnoOf(ret)
    if (errno === ENOENT) return undefined
    throw bpfError(`lookup in map ${this.name}`, errno)
  }

  /**
   * Insert or replace. Per-CPU maps take either one value (written to every CPU) or lookupSize bytes.
   * 'noexist' fails with EEXIST when the key is there, 'exist' with ENOENT when it is not.
   */
  update(key: Uint8Array, value: Uint8Array, flags: UpdateFlag = 'any'): void {
    this.checkKey(key)
    let raw = value
    if (this.perCpu && value.length === this.valueSize && this.lookupSize !== this.valueSize) {
      raw = Buffer.alloc(this.lookupSize)
      for (let cpu = 0; cpu < numPossibleCpus(); cpu++) (raw as Buffer).set(value, cpu * this.perCpuStride)
    }
    const expected = this.perCpu ? this.lookupSize : this.valueSize
    if (raw.length !== expected) {
      throw new UsageError(`map ${this.name}: value must be ${expected} bytes, got ${value.length}`)
    }
    const flag = updateFlags[flags]
    if (flag === undefined) throw new UsageError(`unknown update flag "${flags}" (any, noexist, exist)`)
    const ret = libbpf().bpf_map_update_elem(this.checkedFd(), key, raw, flag)
    if (ret !== 0) throw bpfError(`update map ${this.name} (${flags})`, errnoOf(ret))
  }

  /** Remove key; false when it was not there. Arrays cannot delete (EINVAL). */
  delete(key: Uint8Array): boolean {
    this.checkKey(key)
    const ret = libbpf().bpf_map_delete_elem(this.checkedFd(), key)
    if (ret === 0) return true
    const errno = errnoOf(ret)
    if (errno === ENOENT) return false
    throw bpfError(`delete from map ${this.name}`, errno)
  }

  *keys(): IterableIterator<Buffer> {
    let previous: Buffer | null = null
    for (;;) {
      const next = Buffer.alloc(this.keySize)
      const ret = libbpf().bpf_map_get_next_key(this.checkedFd(), previous, next)
      if (ret !== 0) {
        const errno = errnoOf(ret)
        if (errno === ENOENT) return
        throw bpfError(`iterate map ${this.name}`, errno)
      }
      yield next
      previous = next
    }
  }

  /** [key, value] pairs; per-CPU maps yield the raw lookupSize bytes (all CPUs). Entries deleted meanwhile are skipped. */
  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const key of this.keys()) {
      const value = this.lookupRaw(key)
      if (value) yield [key, value]
    }
  }

  /** Pin on bpffs (the directory must be on a bpffs mount). */
  pin(path: string): void {
    const ret = libbpf().bpf_obj_pin(this.checkedFd(), path)
    if (ret !== 0) {
      throw bpfError(`pin map ${this.name} at ${path}`, errnoOf(ret), {
        hint: 'the directory must exist on a mounted bpffs (ensureBpffs) and the name must be free',
      })
    }
  }

  /** Remove a map pin. */
  static unpin(path: string): void {
    unpinPath(path)
  }

  /**
   * Field layout of the value from the map's BTF (kernel copy), e.g. the counters of a `stats` map.
   * Empty when the map has no BTF for its value or the value is not a struct.
   */
  valueFields(): BtfField[] {
    const info = this.info()
    if (info.btfId === 0 || info.btfValueTypeId === 0) return []
    const lib = libbpf()
    const btf = lib.btf__load_from_kernel_by_id(info.btfId)
    if (!btf) throw bpfError(`load BTF ${info.btfId} of map ${this.name}`, errnoOf(null))
    try {
      return btfStructFields(btf, info.btfValueTypeId)
    } finally {
      lib.btf__free(btf)
    }
  }

  /** Close the fd if this map owns it (fromPin/fromId/fromFd); maps of a BpfObject close with it. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.ownsFd) libc().close(this.fd)
  }

  private checkedFd(): number {
    if (this.closed || this.fd < 0) throw new UsageError(`map ${this.name} is closed or not loaded`)
    return this.fd
  }

  private checkKey(key: Uint8Array): void {
    if (key.length !== this.keySize) throw new UsageError(`map ${this.name}: key must be ${this.keySize} bytes, got ${key.length}`)
  }
}

/**
 * Counters of a kbx `stats` map (per-CPU array, one entry whose value is a struct of u64 counters; see
 * bpf/include/kbx_stats.h), summed over CPUs and named from the map's BTF.
 */
export function readCounters(map: BpfMap, key = 0): Record<string, bigint> {
  const keyBytes = Buffer.alloc(map.keySize)
  keyBytes.writeUInt32LE(key)
  const sums = map.sumPerCpuU64(keyBytes)
  const fields = map.valueFields()
  const counters: Record<string, bigint> = {}
  if (fields.length === 0) {
    sums.forEach((sum, i) => (counters[`u64_${i}`] = sum))
    return counters
  }
  for (const field of fields) {
    if (field.size === 8 && field.offset % 8 === 0) counters[field.name] = sums[field.offset / 8] ?? 0n
  }
  return counters
}
