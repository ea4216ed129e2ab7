import { readdirSync, readFileSync } from 'node:fs'
import { release } from 'node:os'
import { execFileSync } from 'node:child_process'
import { KbxError } from '@kbx/errors'
import {
  koffi,
  libbpf,
  libc,
  BpfLinkCreateOpts,
  BpfMapCreateOpts,
  BpfProgLoadOpts,
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_spin_lock,
  BPF_FUNC_spin_unlock,
  BPF_FUNC_tail_call,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_PROG_ARRAY,
  BPF_PROG_TYPE_EXT,
  BPF_PROG_TYPE_XDP,
  BPF_XDP,
  BTF_FUNC_GLOBAL,
  BTF_INT_SIGNED,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_SKB_MODE,
  type BpfMapCreateOptsValue,
  type BpfProgLoadOptsValue,
  type BtfPtr,
} from '@kbx/ffi'
import { errnoName, errnoOf } from './errors.js'
import * as I from './insns.js'
import { installLibbpfPrint } from './libbpf-log.js'
import { xdpAttachmentOf } from './link.js'
import { resolveIfindex } from './system.js'
import { testRunProgram, XDP_DROP, XDP_PASS } from './testrun.js'

/** Every probe asks the kernel (loads a program, creates a map, attaches and detaches); nothing is inferred from versions. */

export type FeatureName =
  | 'btf'
  | 'bpfLink'
  | 'atomics'
  | 'spinLocks'
  | 'lruMaps'
  | 'tailCalls'
  | 'progTestRun'
  | 'liveFrames'
  | 'freplace'
  | 'libxdpDispatcher'
  | 'xdpNative'
  | 'xdpSkb'
  | 'multiQueue'
  | 'afXdp'
  | 'zeroCopy'

export interface FeatureFailure {
  /** The step that failed, e.g. "load BPF_PROG_TYPE_EXT program". */
  op: string
  errno?: number
  code?: string
  message: string
}

export interface QueueCounts {
  rxQueues: number
  txQueues: number
  /** More than one rx queue. */
  multi: boolean
  /** Where the counts came from. */
  source: 'sysfs' | 'netlink'
}

export interface FeatureReport {
  kernel: string
  libbpf: string
  btf: boolean
  /** XDP attachment through bpf_link (probed on iface, or on lo in skb mode when no iface is given). */
  bpfLink: boolean
  atomics: boolean
  spinLocks: boolean
  lruMaps: boolean
  tailCalls: boolean
  progTestRun: boolean
  liveFrames: boolean
  /** BPF_PROG_TYPE_EXT replacing a function of a loaded XDP program (what libxdp's dispatcher needs). */
  freplace: boolean
  iface?: string
  /** libxdp's multi-program dispatcher attached for real (xdp-load probes it when given an interface). */
  libxdpDispatcher?: boolean
  xdpNative?: boolean
  xdpSkb?: boolean
  multiQueue?: QueueCounts
  /** Left to @kbx/xsk, which probes AF_XDP sockets and fills these in. */
  afXdp?: boolean
  zeroCopy?: boolean
  /** Why each false feature is false. */
  failures: Partial<Record<FeatureName, FeatureFailure>>
}

class ProbeFailure extends Error {
  constructor(
    readonly op: string,
    readonly errno: number | undefined,
    message: string,
  ) {
    super(message)
  }
}

function fail(op: string, errno: number, detail?: string): never {
  throw new ProbeFailure(op, errno, `${op}: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`)
}

function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd)
}

const PROBE_FRAME = Buffer.alloc(64)

function loadProgram(type: number, insns: I.Insn[], what: string, opts: BpfProgLoadOptsValue = {}): number {
  const log = Buffer.alloc(64 * 1024)
  const fullOpts = { sz: koffi.sizeof(BpfProgLoadOpts), log_buf: log, log_size: log.length, log_level: 0, ...opts }
  const code = I.assemble(insns)
  const fd = libbpf().bpf_prog_load(type, 'kbx_probe', 'GPL', code, insns.length, fullOpts)
  if (fd < 0) {
    const end = log.indexOf(0)
    const lastLine = log.toString('utf8', 0, end < 0 ? 0 : end).trim().split('\n').at(-1)
    fail(`load ${what}`, errnoOf(fd), lastLine || undefined)
  }
  return fd
}

function createMap(type: number, keySize: number, valueSize: number, maxEntries: number, what: string, opts?: BpfMapCreateOptsValue): number {
  const fd = libbpf().bpf_map_create(type, 'kbx_probe', keySize, valueSize, maxEntries, opts ? { sz: koffi.sizeof(BpfMapCreateOpts), ...opts } : null)
  if (fd < 0) fail(`create ${what}`, errnoOf(fd))
  return fd
}

const passInsns = (): I.Insn[] => [I.movImm(I.R0, XDP_PASS), I.exit()]

function withBtf<T>(build: (btf: BtfPtr) => void, use: (btf: BtfPtr, btfFd: number) => T): T {
  const lib = libbpf()
  const btf = lib.btf__new_empty()
  if (!btf) fail('create BTF', errnoOf(null))
  try {
    build(btf)
    const ret = lib.btf__load_into_kernel(btf)
    if (ret !== 0) fail('load BTF into the kernel', errnoOf(ret))
    return use(btf, lib.btf__fd(btf))
  } finally {
    lib.btf__free(btf)
  }
}

function probeBtf(): void {
  withBtf(
    (btf) => libbpf().btf__add_int(btf, 'int', 4, BTF_INT_SIGNED),
    () => undefined,
  )
}

function probeAtomics(): void {
  closeFd(
    loadProgram(
      BPF_PROG_TYPE_XDP,
      [
        I.movImm(I.R1, 0),
        I.storeReg64(I.R10, -8, I.R1),
        I.movImm(I.R2, 1),
        I.atomicFetchAdd64(I.R10, -8, I.R2),
        I.movImm(I.R0, XDP_PASS),
        I.exit(),
      ],
      'XDP program with an atomic fetch-add',
    ),
  )
}

function probeLruMaps(): void {
  closeFd(createMap(BPF_MAP_TYPE_LRU_HASH, 4, 8, 16, 'LRU hash map'))
}

function probeSpinLocks(): void {
  const lib = libbpf()
  let ids = { int: 0, value: 0 }
  withBtf(
    (btf) => {
      const int = lib.btf__add_int(btf, 'int', 4, BTF_INT_SIGNED)
      const lock = lib.btf__add_struct(btf, 'bpf_spin_lock', 4)
      lib.btf__add_field(btf, 'val', int, 0, 0)
      const value = lib.btf__add_struct(btf, 'kbx_probe_value', 8)
      lib.btf__add_field(btf, 'lock', lock, 0, 0)
      lib.btf__add_field(btf, 'counter', int, 32, 0)
      ids = { int, value }
    },
    (_btf, btfFd) => {
      const mapFd = createMap(BPF_MAP_TYPE_ARRAY, 4, 8, 1, 'array map with a bpf_spin_lock', {
        btf_fd: btfFd,
        btf_key_type_id: ids.int,
        btf_value_type_id: ids.value,
      })
      try {
        closeFd(
          loadProgram(
            BPF_PROG_TYPE_XDP,
            [
              ...I.loadMapFd(I.R1, mapFd),
              I.storeImm32(I.R10, -4, 0),
              I.movReg(I.R2, I.R10),
              I.addImm(I.R2, -4),
              I.call(BPF_FUNC_map_lookup_elem),
              I.jeqImm(I.R0, 0, 5),
              I.movReg(I.R6, I.R0),
              I.movReg(I.R1, I.R6),
              I.call(BPF_FUNC_spin_lock),
              I.movReg(I.R1, I.R6),
              I.call(BPF_FUNC_spin_unlock),
              I.movImm(I.R0, XDP_PASS),
              I.exit(),
            ],
            'XDP program taking a bpf_spin_lock',
          ),
        )
      } finally {
        closeFd(mapFd)
      }
    },
  )
}

function probeTailCalls(): void {
  const mapFd = createMap(BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 1, 'program array')
  let callerFd = -1
  let calleeFd = -1
  try {
    calleeFd = loadProgram(BPF_PROG_TYPE_XDP, passInsns(), 'tail-call target')
    callerFd = loadProgram(
      BPF_PROG_TYPE_XDP,
      [...I.loadMapFd(I.R2, mapFd), I.movImm(I.R3, 0), I.call(BPF_FUNC_tail_call), I.movImm(I.R0, XDP_DROP), I.exit()],
      'XDP program with a tail call',
    )
    const key = Buffer.alloc(4)
    const value = Buffer.alloc(4)
    value.writeInt32LE(calleeFd)
    const ret = libbpf().bpf_map_update_elem(mapFd, key, value, 0)
    if (ret !== 0) fail('insert program into program array', errnoOf(ret))
    const result = testRunProgram(callerFd, BPF_PROG_TYPE_XDP, 'kbx_probe', { data: PROBE_FRAME })
    if (result.retval !== XDP_PASS) {
      throw new ProbeFailure('run a tail call', undefined, `the tail call did not happen (verdict ${result.verdict})`)
    }
  } finally {
    closeFd(callerFd)
    closeFd(calleeFd)
    closeFd(mapFd)
  }
}

function probeTestRun(live: boolean): void {
  const fd = loadProgram(BPF_PROG_TYPE_XDP, [I.movImm(I.R0, live ? XDP_DROP : XDP_PASS), I.exit()], 'XDP program')
  try {
    const result = testRunProgram(fd, BPF_PROG_TYPE_XDP, 'kbx_probe', { data: PROBE_FRAME, live })
    if (!live && result.retval !== XDP_PASS) {
      throw new ProbeFailure('BPF_PROG_TEST_RUN', undefined, `returned ${result.retval} instead of XDP_PASS`)
    }
  } catch (err) {
    if (err instanceof KbxError && err.errno !== undefined) fail(live ? 'BPF_PROG_TEST_RUN with live frames' : 'BPF_PROG_TEST_RUN', err.errno)
    throw err
  } finally {
    closeFd(fd)
  }
}

function probeFreplace(): void {
  const lib = libbpf()
  let funcId = 0
  withBtf(
    (btf) => {
      const int = lib.btf__add_int(btf, 'int', 4, BTF_INT_SIGNED)
      const ctx = lib.btf__add_struct(btf, 'xdp_md', 24)
      const ctxPtr = lib.btf__add_ptr(btf, ctx)
      const proto = lib.btf__add_func_proto(btf, int)
      lib.btf__add_func_param(btf, 'ctx', ctxPtr)
      funcId = lib.btf__add_func(btf, 'kbx_probe', BTF_FUNC_GLOBAL, proto)
    },
    (_btf, btfFd) => {
      const funcInfo = Buffer.alloc(8)
      funcInfo.writeUInt32LE(0, 0)
      funcInfo.writeUInt32LE(funcId, 4)
      const withFuncInfo = { prog_btf_fd: btfFd, func_info: funcInfo, func_info_cnt: 1, func_info_rec_size: 8 }
      const targetFd = loadProgram(BPF_PROG_TYPE_XDP, passInsns(), 'XDP program with BTF (freplace target)', withFuncInfo)
      let extFd = -1
      try {
        extFd = loadProgram(BPF_PROG_TYPE_EXT, passInsns(), 'BPF_PROG_TYPE_EXT program', {
          ...withFuncInfo,
          attach_prog_fd: targetFd,
          attach_btf_id: funcId,
        })
        const linkFd = lib.bpf_link_create(extFd, 0, 0, null)
        if (linkFd < 0) fail('attach the freplace program (bpf_link_create)', errnoOf(linkFd))
        closeFd(linkFd)
      } finally {
        closeFd(extFd)
        closeFd(targetFd)
      }
    },
  )
}

function probeXdpAttach(ifindex: number, flags: number, what: string): void {
  const fd = loadProgram(BPF_PROG_TYPE_XDP, passInsns(), 'XDP program')
  try {
    const linkFd = libbpf().bpf_link_create(fd, ifindex, BPF_XDP, { sz: koffi.sizeof(BpfLinkCreateOpts), flags })
    if (linkFd < 0) fail(`attach XDP in ${what} mode`, errnoOf(linkFd))
    closeFd(linkFd)
  } finally {
    closeFd(fd)
  }
}

/** Queue counts: sysfs when it shows this network namespace, else `ip -d link` (netlink, always this namespace). */
export function queueCounts(iface: string): QueueCounts {
  const ifindex = resolveIfindex(iface)
  try {
    const sysfsIfindex = Number(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8').trim())
    if (sysfsIfindex === ifindex) {
      const queues = readdirSync(`/sys/class/net/${iface}/queues`)
      const rxQueues = queues.filter((q) => q.startsWith('rx-')).length
      const txQueues = queues.filter((q) => q.startsWith('tx-')).length
      return { rxQueues, txQueues, multi: rxQueues > 1, source: 'sysfs' }
    }
  } catch {
    // not in this namespace's sysfs: ask netlink
  }
  const [entry] = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', iface], { encoding: 'utf8' })) as {
    num_rx_queues?: number
    num_tx_queues?: number
  }[]
  const rxQueues = entry?.num_rx_queues ?? 1
  const txQueues = entry?.num_tx_queues ?? 1
  return { rxQueues, txQueues, multi: rxQueues > 1, source: 'netlink' }
}

/**
 * Probe what this kernel and (optionally) interface support. With iface, XDP is attached to it in
 * native and skb mode and detached again: on some NICs a native attach resets the queues, so probe a
 * quiet interface. The interface must have no XDP program attached (else those probes fail with EBUSY).
 */
export function probeFeatures(iface?: string): FeatureReport {
  installLibbpfPrint()
  const report: FeatureReport = {
    kernel: release(),
    libbpf: libbpf().libbpf_version_string(),
    btf: false,
    bpfLink: false,
    atomics: false,
    spinLocks: false,
    lruMaps: false,
    tailCalls: false,
    progTestRun: false,
    liveFrames: false,
    freplace: false,
    failures: {},
  }
  const run = (name: FeatureName, probe: () => void): boolean => {
    try {
      probe()
      return true
    } catch (err) {
      report.failures[name] = failureOf(err)
      return false
    }
  }
  report.btf = run('btf', probeBtf)
  report.atomics = run('atomics', probeAtomics)
  report.spinLocks = run('spinLocks', probeSpinLocks)
  report.lruMaps = run('lruMaps', probeLruMaps)
  report.tailCalls = run('tailCalls', probeTailCalls)
  report.progTestRun = run('progTestRun', () => probeTestRun(false))
  report.liveFrames = run('liveFrames', () => probeTestRun(true))
  report.freplace = run('freplace', probeFreplace)

  if (iface !== undefined) {
    report.iface = iface
    const ifindex = resolveIfindex(iface)
    report.xdpNative = run('xdpNative', () => probeXdpAttach(ifindex, XDP_FLAGS_DRV_MODE, 'native'))
    report.xdpSkb = run('xdpSkb', () => probeXdpAttach(ifindex, XDP_FLAGS_SKB_MODE, 'skb'))
    report.bpfLink = report.xdpNative || report.xdpSkb
    if (!report.bpfLink) report.failures.bpfLink = report.failures.xdpSkb ?? report.failures.xdpNative
    try {
      report.multiQueue = queueCounts(iface)
    } catch (err) {
      report.failures.multiQueue = failureOf(err)
    }
  } else {
    report.bpfLink = run('bpfLink', () => {
      const lo = resolveIfindex('lo')
      if (xdpAttachmentOf(lo).programs.length > 0) {
        throw new ProbeFailure('attach XDP to lo', 16, 'lo already has an XDP program; probe with an interface instead')
      }
      probeXdpAttach(lo, XDP_FLAGS_SKB_MODE, 'skb (on lo)')
    })
  }
  return report
}

function failureOf(err: unknown): FeatureFailure {
  if (err instanceof ProbeFailure) {
    return {
      op: err.op,
      ...(err.errno === undefined ? {} : { errno: err.errno, code: errnoName(err.errno) }),
      message: err.message,
    }
  }
  if (err instanceof KbxError) {
    return {
      op: err.op,
      ...(err.errno === undefined ? {} : { errno: err.errno, code: errnoName(err.errno) }),
      message: err.message,
    }
  }
  return { op: 'probe', message: err instanceof Error ? err.message : String(err) }
}

