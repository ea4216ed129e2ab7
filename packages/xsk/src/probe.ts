import { errnoName } from '@kbx/errors'
import { KBX_ZERO_COPY_REQUIRE, KBX_ZERO_COPY_TRY, takeNativeFailure, type KbxXskInfoValue } from '@kbx/ffi'
import { hintFor, native } from './native.js'

export interface XskProbeResult {
  iface: string
  queue: number
  /** The socket bound (in whichever mode the probe allowed). */
  ok: boolean
  /** Bound in zero-copy mode. */
  zeroCopy: boolean
  needWakeup: boolean
  /** Why the bind failed, or why zero-copy was refused when copy mode was used instead. */
  errno?: number
  code?: string
  operation?: string
  hint?: string
}

function probe(iface: string, queue: number, policy: number): XskProbeResult {
  const lib = native()
  const info: Partial<KbxXskInfoValue> = {}
  const rc = lib.kbx_xsk_probe(iface, queue, policy, info)
  if (rc < 0) {
    const failure = takeNativeFailure(rc, `probe AF_XDP on ${iface} queue ${queue}`)
    const errno = failure.errno
    const hint = hintFor(errno)
    return {
      iface,
      queue,
      ok: false,
      zeroCopy: false,
      needWakeup: false,
      errno,
      code: errnoName(errno),
      operation: failure.message ? `${failure.op}: ${failure.message}` : failure.op,
      ...(hint === undefined ? {} : { hint }),
    }
  }
  const refused = info.zero_copy_errno ?? 0
  return {
    iface,
    queue,
    ok: true,
    zeroCopy: info.zero_copy === 1,
    needWakeup: info.need_wakeup === 1,
    ...(refused ? { errno: refused, code: errnoName(refused) } : {}),
  }
}

/**
 * Whether an AF_XDP socket binds on iface/queue at all (zero-copy first, then copy mode): binds a tiny
 * UMEM and socket and closes them. Never throws for kernel refusals: they come back as errno/code.
 */
export function probeAfXdp(iface: string, queue = 0): XskProbeResult {
  return probe(iface, queue, KBX_ZERO_COPY_TRY)
}

/** Whether a zero-copy AF_XDP socket binds on iface/queue (ok false with EOPNOTSUPP when the driver has none). */
export function probeZeroCopy(iface: string, queue = 0): XskProbeResult {
  return probe(iface, queue, KBX_ZERO_COPY_REQUIRE)
}
