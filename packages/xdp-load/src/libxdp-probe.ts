import { existsSync, rmSync } from 'node:fs'
import { errnoName } from '@kbx/errors'
import { bpfObjectPath } from '@kbx/ffi'
import type { FeatureFailure } from '@kbx/bpf'
import { XDP_MODE, libxdp, libxdpReason, takeLibxdpMessages } from './libxdp-binding.js'
import type { LibXdp } from './libxdp-binding.js'

/** libxdp's multi-program dispatcher, tried for real: what `xdp-load features IFACE` reports as libxdpDispatcher. */
export interface LibxdpProbe {
  ok: boolean
  failure?: FeatureFailure
  /** libxdp's reason in one line, when it gave one. */
  reason?: string
  /** libxdp's own messages while it tried (it says which step failed). */
  messages: string[]
}

/**
 * Attaches two programs at once with libxdp (xdp_program__attach_multi, skb mode), as xdp-loader would:
 * libxdp builds its dispatcher and replaces its slots with the programs through freplace. Detaches them
 * again when it works; reports the errno and libxdp's last words when it does not.
 */
export function probeLibxdpDispatcher(ifindex: number): LibxdpProbe {
  let lib: LibXdp
  try {
    lib = libxdp()
  } catch (err) {
    return { ok: false, messages: [], failure: { op: 'load libxdp.so.1', message: err instanceof Error ? err.message : String(err) } }
  }
  takeLibxdpMessages()
  const createdDir = !existsSync('/sys/fs/bpf/xdp')
  const programs: unknown[] = []
  try {
    for (const name of ['test_foreign_pass', 'test_count_udp_drop']) {
      const prog = lib.xdp_program__open_file(bpfObjectPath(name), 'xdp', null)
      const err = lib.libxdp_get_error(prog)
      if (err) return failed('open a program with libxdp (xdp_program__open_file)', Math.abs(err))
      programs.push(prog)
    }
    const ret = lib.xdp_program__attach_multi(programs, programs.length, ifindex, XDP_MODE.skb, 0)
    if (ret < 0) return failed('attach two programs with libxdp (xdp_program__attach_multi)', -ret)
    lib.xdp_program__detach_multi(programs, programs.length, ifindex, XDP_MODE.skb, 0)
    return { ok: true, messages: takeLibxdpMessages() }
  } finally {
    for (const prog of programs) lib.xdp_program__close(prog)
    if (createdDir) rmSync('/sys/fs/bpf/xdp', { recursive: true, force: true })
  }
}

function failed(op: string, errno: number): LibxdpProbe {
  const messages = takeLibxdpMessages()
  const reason = libxdpReason(messages)
  return {
    ok: false,
    messages,
    ...(reason ? { reason } : {}),
    failure: { op, errno, code: errnoName(errno), message: `${op}: ${errnoName(errno)}${reason ? ` (libxdp: ${reason})` : ''}` },
  }
}

const probed = new Map<number, LibxdpProbe>()

/** The probe, once per interface for the run (`xdp-load load --dispatcher auto` asks before each load). */
export function probeLibxdpDispatcherOnce(ifindex: number): LibxdpProbe {
  let result = probed.get(ifindex)
  if (result === undefined) {
    result = probeLibxdpDispatcher(ifindex)
    probed.set(ifindex, result)
  }
  return result
}
