import { koffi, libc, LibbpfPrintFn, openLibrary } from '@kbx/ffi'

/** The few libxdp calls kbx makes (libxdp 1.3, Debian's libxdp1): its dispatcher, probed or used. */
export interface LibXdp {
  libxdp_set_print(fn: unknown): unknown
  libxdp_get_error(ptr: unknown): number
  xdp_program__open_file(path: string, section: string | null, opts: null): unknown
  xdp_program__close(prog: unknown): void
  xdp_program__name(prog: unknown): string
  xdp_program__id(prog: unknown): number
  xdp_program__run_prio(prog: unknown): number
  xdp_program__set_run_prio(prog: unknown, prio: number): number
  xdp_program__attach_multi(progs: unknown[], count: number, ifindex: number, mode: number, flags: number): number
  xdp_program__detach_multi(progs: unknown[], count: number, ifindex: number, mode: number, flags: number): number
  xdp_program__detach(prog: unknown, ifindex: number, mode: number, flags: number): number
  xdp_multiprog__get_from_ifindex(ifindex: number): unknown
  xdp_multiprog__next_prog(prog: unknown, mp: unknown): unknown
  xdp_multiprog__attach_mode(mp: unknown): number
  xdp_multiprog__is_legacy(mp: unknown): boolean
  xdp_multiprog__detach(mp: unknown): number
  xdp_multiprog__close(mp: unknown): void
}

/** enum xdp_attach_mode */
export const XDP_MODE = { auto: 0, native: 1, skb: 2, hw: 3 } as const
export const XDP_MODE_NAMES = ['auto', 'native', 'skb', 'hw'] as const

let bound: LibXdp | undefined
let messages: string[] = []
const formatBuffer = Buffer.alloc(16 * 1024)

/** libxdp.so.1 bound once; its log lines are collected (see takeLibxdpMessages) instead of printed. */
export function libxdp(): LibXdp {
  if (bound) return bound
  const lib = openLibrary('libxdp', ['libxdp.so.1', '/usr/lib/x86_64-linux-gnu/libxdp.so.1'], 'install libxdp (Debian: apt install libxdp1)')
  bound = {
    libxdp_set_print: lib.func('void *libxdp_set_print(void *fn)'),
    libxdp_get_error: lib.func('long libxdp_get_error(const void *ptr)'),
    xdp_program__open_file: lib.func('void *xdp_program__open_file(const char *filename, const char *section_name, void *opts)'),
    xdp_program__close: lib.func('void xdp_program__close(void *prog)'),
    xdp_program__name: lib.func('const char *xdp_program__name(const void *prog)'),
    xdp_program__id: lib.func('uint32_t xdp_program__id(const void *prog)'),
    xdp_program__run_prio: lib.func('unsigned int xdp_program__run_prio(const void *prog)'),
    xdp_program__set_run_prio: lib.func('int xdp_program__set_run_prio(void *prog, unsigned int run_prio)'),
    xdp_program__attach_multi: lib.func('int xdp_program__attach_multi(void **progs, size_t num_progs, int ifindex, int mode, unsigned int flags)'),
    xdp_program__detach_multi: lib.func('int xdp_program__detach_multi(void **progs, size_t num_progs, int ifindex, int mode, unsigned int flags)'),
    xdp_program__detach: lib.func('int xdp_program__detach(void *prog, int ifindex, int mode, unsigned int flags)'),
    xdp_multiprog__get_from_ifindex: lib.func('void *xdp_multiprog__get_from_ifindex(int ifindex)'),
    xdp_multiprog__next_prog: lib.func('void *xdp_multiprog__next_prog(const void *prog, const void *mp)'),
    xdp_multiprog__attach_mode: lib.func('int xdp_multiprog__attach_mode(const void *mp)'),
    xdp_multiprog__is_legacy: lib.func('bool xdp_multiprog__is_legacy(const void *mp)'),
    xdp_multiprog__detach: lib.func('int xdp_multiprog__detach(void *mp)'),
    xdp_multiprog__close: lib.func('void xdp_multiprog__close(void *mp)'),
  }
  const onPrint = (_level: number, format: string, args: unknown): number => {
    const written = libc().vsnprintf(formatBuffer, formatBuffer.length, format, args)
    messages.push(formatBuffer.toString('utf8', 0, Math.max(0, Math.min(written, formatBuffer.length - 1))).trimEnd())
    return 0
  }
  bound.libxdp_set_print(koffi.register(onPrint, koffi.pointer(LibbpfPrintFn)))
  return bound
}

/** libxdp's messages since the last call (it says which step failed), and starts a new collection. */
export function takeLibxdpMessages(): string[] {
  const taken = messages
  messages = []
  return taken
}

/** The lines of libxdp's messages that say why something failed, shortest form, last two. */
export function libxdpReason(collected: readonly string[]): string {
  const reasons = collected.filter((m) => /fail|can't|not permitted|not supported/i.test(m)).map((m) => m.replace(/^libxdp: /, '').split('\n')[0]!)
  return reasons.slice(-2).join('; ')
}

/** A pointer libxdp returned, or its errno (positive) when it is NULL or an error pointer. */
export function pointerOrErrno(lib: LibXdp, ptr: unknown): { ptr: unknown } | { errno: number } {
  if (ptr === null) return { errno: 2 }
  const err = lib.libxdp_get_error(ptr)
  return err ? { errno: Math.abs(err) } : { ptr }
}
