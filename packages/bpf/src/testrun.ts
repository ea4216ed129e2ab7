import { UsageError } from '@kbx/errors'
import {
  koffi,
  libbpf,
  BpfTestRunOpts,
  XdpMd,
  BPF_F_TEST_RUN_ON_CPU,
  BPF_F_TEST_XDP_LIVE_FRAMES,
  BPF_PROG_TYPE_XDP,
  type BpfTestRunOptsValue,
} from '@kbx/ffi'
import { bpfError, errnoOf } from './errors.js'
import { onCpu } from './system.js'

/** XDP return codes (enum xdp_action). */
export const XDP_ABORTED = 0
export const XDP_DROP = 1
export const XDP_PASS = 2
export const XDP_TX = 3
export const XDP_REDIRECT = 4

export type XdpVerdict = 'aborted' | 'drop' | 'pass' | 'tx' | 'redirect'

const verdictNames: readonly XdpVerdict[] = ['aborted', 'drop', 'pass', 'tx', 'redirect']

/** Name of an XDP return code; unknown codes (the kernel treats them as aborted) read "unknown(N)". */
export function xdpVerdictName(retval: number): XdpVerdict | string {
  return verdictNames[retval] ?? `unknown(${retval})`
}

export interface TestRunOptions {
  /** The frame, starting at the Ethernet header. */
  data: Uint8Array
  /** Runs of the program; durationNs is the average. Default 1. */
  repeat?: number
  /**
   * Run on this CPU. The kernel accepts BPF_F_TEST_RUN_ON_CPU only for raw tracepoint programs (EINVAL
   * for XDP), so for XDP the calling thread is pinned to the CPU for the duration of the call instead;
   * the run itself cannot migrate, so per-CPU map updates land in that CPU's slot.
   */
  cpu?: number
  /** Bytes reserved for the output frame (default data.length + 4096; XDP may grow the frame). */
  dataOutSize?: number
  /**
   * BPF_F_TEST_XDP_LIVE_FRAMES: verdicts take effect (PASS enters the stack of the ingress device, TX
   * and REDIRECT transmit), nothing is copied back; retval is not meaningful then.
   */
  live?: boolean
  /** struct xdp_md given to the program: the ifindex must exist (in this namespace) and the queue be below its rx queue count. */
  ctx?: { ingressIfindex?: number; rxQueueIndex?: number }
  /** Live mode: frames per batch (kernel default 64). */
  batchSize?: number
}

export interface TestRunResult {
  retval: number
  verdict: XdpVerdict | string
  /** The frame after the program ran (empty in live mode). */
  dataOut: Buffer
  /** Average per repetition, as the kernel measured it. */
  durationNs: number
  /** Context after the run (only when ctx was given). */
  ctxOut?: { ingressIfindex: number; rxQueueIndex: number; data: number; dataEnd: number; dataMeta: number }
}

/** BPF_PROG_TEST_RUN on a loaded program (any type; verdict names assume XDP). */
export function testRunProgram(progFd: number, progType: number, name: string, options: TestRunOptions): TestRunResult {
  if (!(options.data instanceof Uint8Array)) throw new UsageError('testRun: data must be a Uint8Array')
  const repeat = options.repeat ?? 1
  if (!Number.isInteger(repeat) || repeat < 1) throw new UsageError(`testRun: repeat must be a positive integer, got ${repeat}`)
  const live = options.live ?? false
  const dataOut = live ? Buffer.alloc(0) : Buffer.alloc(options.dataOutSize ?? options.data.length + 4096)

  let ctxIn: Buffer | null = null
  let ctxOut: Buffer | null = null
  if (options.ctx) {
    ctxIn = Buffer.alloc(koffi.sizeof(XdpMd))
    koffi.encode(ctxIn, 0, XdpMd, {
      data: 0,
      data_end: options.data.length,
      data_meta: 0,
      ingress_ifindex: options.ctx.ingressIfindex ?? 0,
      rx_queue_index: options.ctx.rxQueueIndex ?? 0,
      egress_ifindex: 0,
    })
    if (!live) ctxOut = Buffer.alloc(ctxIn.length)
  }

  const useKernelCpuFlag = options.cpu !== undefined && progType !== BPF_PROG_TYPE_XDP
  const opts: BpfTestRunOptsValue = {
    sz: koffi.sizeof(BpfTestRunOpts),
    data_in: options.data,
    data_out: live ? null : dataOut,
    data_size_in: options.data.length,
    data_size_out: dataOut.length,
    ctx_in: ctxIn,
    ctx_out: ctxOut,
    ctx_size_in: ctxIn?.length ?? 0,
    ctx_size_out: ctxOut?.length ?? 0,
    retval: 0,
    repeat,
    duration: 0,
    flags: (live ? BPF_F_TEST_XDP_LIVE_FRAMES : 0) | (useKernelCpuFlag ? BPF_F_TEST_RUN_ON_CPU : 0),
    cpu: useKernelCpuFlag ? (options.cpu ?? 0) : 0,
    batch_size: live ? (options.batchSize ?? 0) : 0,
  }
  const run = (): number => libbpf().bpf_prog_test_run_opts(progFd, opts)
  const ret = options.cpu !== undefined && !useKernelCpuFlag ? onCpu(options.cpu, run) : run()
  if (ret !== 0) {
    const errno = errnoOf(ret)
    throw bpfError(`test run of program ${name}`, errno, {
      hint:
        errno === 28 /* ENOSPC */
          ? 'the output frame is larger than dataOutSize'
          : live
            ? 'live frames need kernel 5.18+, an XDP program, repeat >= 1 and a frame of at least 14 bytes'
            : 'XDP test runs need a frame of at least 14 bytes (Ethernet header) and at most a page',
    })
  }
  const result: TestRunResult = {
    retval: opts.retval,
    verdict: xdpVerdictName(opts.retval),
    dataOut: dataOut.subarray(0, live ? 0 : opts.data_size_out),
    durationNs: opts.duration,
  }
  if (ctxOut) {
    const md = koffi.decode(ctxOut, XdpMd) as Record<string, number>
    result.ctxOut = {
      ingressIfindex: md['ingress_ifindex'] ?? 0,
      rxQueueIndex: md['rx_queue_index'] ?? 0,
      data: md['data'] ?? 0,
      dataEnd: md['data_end'] ?? 0,
      dataMeta: md['data_meta'] ?? 0,
    }
  }
  return result
}
