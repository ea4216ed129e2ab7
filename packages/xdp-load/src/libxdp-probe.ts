import { existsSync, rmSync } from 'node:fs'
import { errnoName } from '@kbx/errors'
import { bpfObjectPath, koffi, libc, LibbpfPrintFn, openLibrary } from '@kbx/ffi'
import type { FeatureFailure } from '@kbx/bpf'

/** libxdp's multi-program dispatcher, tried for real: what `xdp-load features IFACE` reports as libxdpDispatcher. */
export interface LibxdpProbe {
  ok: boolean
  failure?: FeatureFailure
  /** libxdp's own messages while it tried (it says which step failed). */
  messages: string[]
}

const XDP_MODE_SKB = 2

interface LibXdp {
  libxdp_set_print(fn: unknown): unknown
  libxdp_get_error(ptr: unknown): number
  xdp_program__open_file(path: string, section: string | null, opts: null): unknown
  xdp_program__close(prog: unknown): void
  xdp_program__attach_multi(progs: unknown[], count: number, ifindex: number, mode: number, flags: number): number
  xdp_program__detach_multi(progs: unknown[], count: number, ifindex: number, mode: number, flags: number): number
}

let bound: LibXdp | undefined
let messages: string[] = []
const formatBuffer = Buffer.alloc(16 * 1024)

function libxdp(): LibXdp {
  if (bound) return bound
  const lib = openLibrary('libxdp', ['libxdp.so.1', '/usr/lib/x86_64-linux-gnu/libxdp.so.1'], 'install libxdp (Debian: apt install libxdp1)')
  bound = {
    libxdp_set_print: lib.func('void *libxdp_set_print(void *fn)'),
    libxdp_get_error: lib.func('long libxdp_get_error(const void *ptr)'),
    xdp_program__open_file: lib.func('void *xdp_program__open_file(const char *filename, const char *section_name, void *opts)'),
    xdp_program__close: lib.func('void xdp_program__close(void *prog)'),
    xdp_program__attach_multi: lib.func('int xdp_program__attach_multi(void **progs, size_t num_progs, int ifindex, int mode, unsigned int flags)'),
    xdp_program__detach_multi: lib.func('int xdp_program__detach_multi(void **progs, size_t num_progs, int ifindex, int mode, unsigned int flags)'),
  }
  const onPrint = (_level: number, format: string, args: unknown): number => {
    const written = libc().vsnprintf(formatBuffer, formatBuffer.length, format, args)
    messages.push(formatBuffer.toString('utf8', 0, Math.max(0, Math.min(written, formatBuffer.length - 1))).trimEnd())
    return 0
  }
  bound.libxdp_set_print(koffi.register(onPrint, koffi.pointer(LibbpfPrintFn)))
  return bound
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
  messages = []
  const createdDir = !existsSync('/sys/fs/bpf/xdp')
  const programs: unknown[] = []
  try {
    for (const name of ['test_foreign_pass', 'test_count_udp_drop']) {
      const prog = lib.xdp_program__open_file(bpfObjectPath(name), 'xdp', null)
      const err = lib.libxdp_get_error(prog)
      if (err) return failed('open a program with libxdp (xdp_program__open_file)', -err)
      programs.push(prog)
    }
    const ret = lib.xdp_program__attach_multi(programs, programs.length, ifindex, XDP_MODE_SKB, 0)
    if (ret < 0) return failed('attach two programs with libxdp (xdp_program__attach_multi)', -ret)
    lib.xdp_program__detach_multi(programs, programs.length, ifindex, XDP_MODE_SKB, 0)
    return { ok: true, messages }
  } finally {
    for (const prog of programs) lib.xdp_program__close(prog)
    if (createdDir) rmSync('/sys/fs/bpf/xdp', { recursive: true, force: true })
  }
}

function failed(op: string, errno: number): LibxdpProbe {
  const reasons = messages.filter((m) => /fail|can't|not permitted|not supported/i.test(m)).map((m) => m.replace(/^libxdp: /, '').split('\n')[0]!)
  const last = reasons.slice(-2).join('; ')
  return { ok: false, messages, failure: { op, errno, code: errnoName(errno), message: `${op}: ${errnoName(errno)}${last ? ` (libxdp: ${last})` : ''}` } }
}
