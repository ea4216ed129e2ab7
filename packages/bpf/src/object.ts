import { existsSync } from 'node:fs'
import { relative } from 'node:path'
import { UsageError } from '@kbx/errors'
import { koffi, libbpf, libc, repoRoot, type BpfObjectPtr, type BpfProgramPtr } from '@kbx/ffi'
import { btfSectionVars } from './btf.js'
import { bpfError, errnoOf } from './errors.js'
import { progInfoByFd, type ProgInfo } from './info.js'
import { collectLibbpfMessages } from './libbpf-log.js'
import { XdpLink, type XdpAttachMode } from './link.js'
import { BpfMap } from './map.js'
import { raiseMemlockLimit } from './system.js'
import { testRunProgram, type TestRunOptions, type TestRunResult } from './testrun.js'

const ENOENT = 2
const ENOSPC = 28

/** Bytes kept for the verifier log while loading (the kernel keeps the tail when it overflows). */
const VERIFIER_LOG_BYTES = 4 * 1024 * 1024
/** Bytes of the verifier log's tail attached to a BpfError. */
const VERIFIER_LOG_TAIL = 8 * 1024

/** A program of a BpfObject. */
export class BpfProgram {
  readonly name: string
  /** Section name in the object, e.g. "xdp". */
  readonly section: string
  /** @internal */
  readonly handle: BpfProgramPtr
  private readonly object: BpfObject

  /** @internal */
  constructor(object: BpfObject, handle: BpfProgramPtr) {
    this.object = object
    this.handle = handle
    this.name = libbpf().bpf_program__name(handle)
    this.section = libbpf().bpf_program__section_name(handle)
  }

  /** Program fd; valid after load(). */
  get fd(): number {
    this.object.assertLoaded(`program ${this.name}`)
    return libbpf().bpf_program__fd(this.handle)
  }

  /** libbpf's program type number (BPF_PROG_TYPE_*). */
  get typeId(): number {
    return libbpf().bpf_program__type(this.handle)
  }

  info(): ProgInfo {
    return progInfoByFd(this.fd)
  }

  /**
   * Attach to an interface through a bpf_link. 'auto' tries native, then skb (log says which and why).
   * Throws BpfError EBUSY (with the current program in the hint) when the interface already has one.
   */
  attachXdp(iface: string | number, mode: XdpAttachMode = 'auto', log?: (msg: string) => void): XdpLink {
    return XdpLink.attach(this.fd, this.name, iface, mode, log)
  }

  /** Whether load() loads this program (before load; a linked dispatcher loads only its entry). */
  setAutoload(autoload: boolean): void {
    const ret = libbpf().bpf_program__set_autoload(this.handle, autoload)
    if (ret !== 0) throw bpfError(`set autoload of program ${this.name}`, errnoOf(ret))
  }

  /** BPF_PROG_TEST_RUN: run the program on one frame (see TestRunOptions for cpu and live). */
  testRun(options: TestRunOptions): TestRunResult {
    return testRunProgram(this.fd, this.typeId, this.name, options)
  }
}

/** A BPF ELF object (bpf/build/*.o): open, set .rodata, load, then use its programs and maps. */
export class BpfObject {
  readonly path: string
  private handle: BpfObjectPtr | undefined
  private loaded = false
  private readonly programList: BpfProgram[] = []
  private mapCache: Map<string, BpfMap> | undefined

  private constructor(path: string, handle: BpfObjectPtr) {
    this.path = path
    this.handle = handle
    const lib = libbpf()
    for (let p = lib.bpf_object__next_program(handle, null); p; p = lib.bpf_object__next_program(handle, p)) {
      this.programList.push(new BpfProgram(this, p))
    }
  }

  /** Open (parse) an object file; nothing reaches the kernel until load(). */
  static open(path: string): BpfObject {
    if (!existsSync(path)) {
      const inRepoBuild = !relative(repoRoot, path).startsWith('..') && path.includes('/bpf/build/')
      throw bpfError(`open BPF object ${path}`, ENOENT, {
        hint: inRepoBuild ? 'build the XDP programs first: make -C bpf' : 'check the path of the .o file',
      })
    }
    return collectLibbpfMessages((messages) => {
      const handle = libbpf().bpf_object__open_file(path, null)
      if (!handle) {
        throw bpfError(`open BPF object ${path}`, errnoOf(null), {
          messages,
          hint: 'is it a BPF ELF object built with clang -target bpf -g?',
        })
      }
      return new BpfObject(path, handle)
    })
  }

  get isLoaded(): boolean {
    return this.loaded
  }

  /**
   * Set a `const volatile` global in .rodata before load(). Numbers are written in host byte order with
   * the variable's size (1, 2, 4 or 8 bytes); a Uint8Array is copied as is (use it for network-order
   * fields, e.g. an IPv4 address as its 4 wire bytes).
   */
  setRodata(name: string, value: number | bigint | Uint8Array): void {
    const handle = this.checkedHandle()
    if (this.loaded) throw new UsageError(`setRodata(${name}): ${this.path} is already loaded; .rodata is frozen`)
    const lib = libbpf()
    const btf = lib.bpf_object__btf(handle)
    const vars = btf ? btfSectionVars(btf, '.rodata') : []
    const variable = vars.find((v) => v.name === name)
    if (!variable) {
      throw new UsageError(`no .rodata variable "${name}" in ${this.path}`, {
        hint: vars.length ? `it has: ${vars.map((v) => v.name).join(', ')}` : 'the object has no .rodata section (declare `const volatile` globals)',
      })
    }
    const map = lib.bpf_object__find_map_by_name(handle, '.rodata')
    const size: [number] = [0]
    const ptr = map ? lib.bpf_map__initial_value(map, size) : null
    if (!ptr || size[0] < variable.offset + variable.size) {
      throw bpfError(`find .rodata of ${this.path}`, ENOENT)
    }
    const bytes = encodeValue(name, value, variable.size)
    const region = Buffer.from(koffi.view(ptr, size[0]))
    region.set(bytes, variable.offset)
  }

  /** Set a map's max_entries before load() (a table size chosen on the command line). */
  setMaxEntries(mapName: string, maxEntries: number): void {
    const handle = this.checkedHandle()
    if (this.loaded) throw new UsageError(`setMaxEntries(${mapName}): ${this.path} is already loaded`)
    const map = libbpf().bpf_object__find_map_by_name(handle, mapName)
    if (!map) throw new UsageError(`no map "${mapName}" in ${this.path}`)
    const ret = libbpf().bpf_map__set_max_entries(map, maxEntries)
    if (ret !== 0) throw bpfError(`set max_entries of map ${mapName} to ${maxEntries}`, -ret)
  }

  /**
   * Before load(): use the map pinned at pinPath(name) instead of creating a new one, for every map that
   * has such a pin (so a rebuilt program keeps its state). Returns the names of the maps reused.
   */
  reusePinnedMaps(pinPath: (name: string) => string): string[] {
    const handle = this.checkedHandle()
    if (this.loaded) throw new UsageError(`reusePinnedMaps: ${this.path} is already loaded`)
    const lib = libbpf()
    const reused: string[] = []
    for (let m = lib.bpf_object__next_map(handle, null); m; m = lib.bpf_object__next_map(handle, m)) {
      if (lib.bpf_map__is_internal(m)) continue
      const name = lib.bpf_map__name(m)
      const path = pinPath(name)
      if (!existsSync(path)) continue
      const fd = lib.bpf_obj_get(path)
      if (fd < 0) throw bpfError(`open pinned map ${path}`, errnoOf(fd))
      try {
        const ret = lib.bpf_map__reuse_fd(m, fd)
        if (ret !== 0) throw bpfError(`reuse pinned map ${path} for ${name}`, errnoOf(ret))
      } finally {
        libc().close(fd) // reuse_fd keeps its own duplicate
      }
      reused.push(name)
    }
    return reused
  }

  /** Names of the object's .rodata variables (its `const volatile` globals). */
  rodataVariables(): string[] {
    const btf = libbpf().bpf_object__btf(this.checkedHandle())
    return btf ? btfSectionVars(btf, '.rodata').map((v) => v.name) : []
  }

  /** Read a .rodata variable's current bytes (before or after load). */
  rodata(name: string): Buffer {
    const handle = this.checkedHandle()
    const lib = libbpf()
    const btf = lib.bpf_object__btf(handle)
    const variable = (btf ? btfSectionVars(btf, '.rodata') : []).find((v) => v.name === name)
    const map = lib.bpf_object__find_map_by_name(handle, '.rodata')
    const size: [number] = [0]
    const ptr = map ? lib.bpf_map__initial_value(map, size) : null
    if (!variable || !ptr) throw new UsageError(`no .rodata variable "${name}" in ${this.path}`)
    return Buffer.from(Buffer.from(koffi.view(ptr, size[0])).subarray(variable.offset, variable.offset + variable.size))
  }

  /**
   * Create the maps and load every program into the kernel. On a verifier rejection the BpfError carries
   * the tail of the verifier log (verifierLog) and the program's name.
   */
  load(): void {
    const handle = this.checkedHandle()
    if (this.loaded) throw new UsageError(`${this.path} is already loaded`)
    raiseMemlockLimit()
    const lib = libbpf()
    const log = Buffer.alloc(VERIFIER_LOG_BYTES)
    for (const program of this.programList) lib.bpf_program__set_log_buf(program.handle, log, log.length)
    collectLibbpfMessages((messages) => {
      const ret = lib.bpf_object__load(handle)
      for (const program of this.programList) lib.bpf_program__set_log_buf(program.handle, null, 0)
      if (ret === 0) return
      const errno = errnoOf(ret)
      const verifierLog = logTail(log)
      const failed = failedProgram(messages) ?? this.programList.find((p) => lib.bpf_program__fd(p.handle) < 0)?.name
      throw bpfError(`load BPF object ${this.path}`, errno, {
        messages,
        ...(verifierLog ? { verifierLog } : {}),
        ...(failed ? { detail: `program ${failed}${verifierLog ? ' rejected by the verifier' : ''}` } : {}),
        hint: verifierLog
          ? errno === ENOSPC
            ? 'the verifier log overflowed its buffer; its tail is in verifierLog'
            : 'the verifier rejected the program: see verifierLog'
          : undefined,
      })
    })
    this.loaded = true
  }

  /** The program with this name (ELF function name), or the first one. */
  program(name?: string): BpfProgram {
    this.checkedHandle()
    if (name === undefined) {
      const first = this.programList[0]
      if (!first) throw new UsageError(`${this.path} contains no programs`)
      return first
    }
    const found = this.programList.find((p) => p.name === name)
    if (!found) {
      throw new UsageError(`no program "${name}" in ${this.path}`, {
        hint: `it has: ${this.programList.map((p) => p.name).join(', ') || '(none)'}`,
      })
    }
    return found
  }

  programs(): BpfProgram[] {
    this.checkedHandle()
    return [...this.programList]
  }

  /** Names of the maps the object declares (before or after load), without the internal .rodata/.bss/.data ones. */
  declaredMaps(): string[] {
    const handle = this.checkedHandle()
    const lib = libbpf()
    const names: string[] = []
    for (let m = lib.bpf_object__next_map(handle, null); m; m = lib.bpf_object__next_map(handle, m)) {
      if (!lib.bpf_map__is_internal(m)) names.push(lib.bpf_map__name(m))
    }
    return names
  }

  /** A map by name (after load). Internal maps are named by section: ".rodata", ".bss", ".data". */
  map(name: string): BpfMap {
    const found = this.mapsByName().get(name)
    if (!found) {
      throw new UsageError(`no map "${name}" in ${this.path}`, {
        hint: `it has: ${[...this.mapsByName().keys()].join(', ') || '(none)'}`,
      })
    }
    return found
  }

  /** All maps (after load), internal ones (.rodata, .bss) included. */
  maps(): BpfMap[] {
    return [...this.mapsByName().values()]
  }

  /** Release everything: unpinned links keep their own references, so attached programs stay attached until those close. */
  close(): void {
    if (!this.handle) return
    libbpf().bpf_object__close(this.handle)
    this.handle = undefined
    this.mapCache = undefined
  }

  /** @internal */
  assertLoaded(what: string): void {
    this.checkedHandle()
    if (!this.loaded) throw new UsageError(`${what} of ${this.path}: call load() first`)
  }

  private mapsByName(): Map<string, BpfMap> {
    const handle = this.checkedHandle()
    this.assertLoaded('maps')
    if (!this.mapCache) {
      const lib = libbpf()
      this.mapCache = new Map()
      for (let m = lib.bpf_object__next_map(handle, null); m; m = lib.bpf_object__next_map(handle, m)) {
        const libbpfName = lib.bpf_map__name(m)
        const name = (lib.bpf_map__is_internal(m) ? sectionOfInternalMap(libbpfName) : undefined) ?? libbpfName
        this.mapCache.set(name, BpfMap.fromLibbpf(m, name))
      }
    }
    return this.mapCache
  }

  private checkedHandle(): BpfObjectPtr {
    if (!this.handle) throw new UsageError(`${this.path} is closed`)
    return this.handle
  }
}

/** libbpf names internal maps "<object prefix>.rodata" and so on; kbx calls them by section. */
function sectionOfInternalMap(name: string): string | undefined {
  const match = /(\.(?:rodata|data|bss|kconfig)(?:\..*)?)$/.exec(name)
  return match?.[1]
}

function encodeValue(name: string, value: number | bigint | Uint8Array, size: number): Uint8Array {
  if (value instanceof Uint8Array) {
    if (value.length !== size) throw new UsageError(`setRodata(${name}): needs ${size} bytes, got ${value.length}`)
    return value
  }
  if (typeof value === 'number' && !Number.isInteger(value)) throw new UsageError(`setRodata(${name}): ${value} is not an integer`)
  const big = BigInt(value)
  const bits = BigInt(size * 8)
  const min = -(1n << (bits - 1n))
  const max = (1n << bits) - 1n
  if (big < min || big > max || ![1, 2, 4, 8].includes(size)) {
    throw new UsageError(`setRodata(${name}): ${value} does not fit in ${size} byte(s)`)
  }
  const out = Buffer.alloc(size)
  let v = BigInt.asUintN(size * 8, big)
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

function logTail(log: Buffer): string | undefined {
  const end = log.indexOf(0)
  const text = log.toString('utf8', 0, end < 0 ? log.length : end).trimEnd()
  if (!text) return undefined
  if (text.length <= VERIFIER_LOG_TAIL) return text
  const tail = text.slice(-VERIFIER_LOG_TAIL)
  return `...\n${tail.slice(tail.indexOf('\n') + 1)}`
}

function failedProgram(messages: string[]): string | undefined {
  for (const message of messages) {
    const match = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(message)
    if (match) return match[1]
  }
  return undefined
}
