import { koffi, openLibrary } from './load.js'

/**
 * libc calls kbx needs beside libbpf. Functions return -1 (or 0 / NULL) and leave errno, read it with
 * lastErrno() right after the call, before any other foreign call.
 */

export const RLIMIT_MEMLOCK = 8
/** RLIM_INFINITY as the 64-bit value rlimit holds. */
export const RLIM_INFINITY = 0xffffffffffffffffn

export const CLONE_NEWNET = 0x40000000
export const CLONE_NEWNS = 0x00020000

export const MS_NOSUID = 0x2
export const MS_NODEV = 0x4
export const MS_NOEXEC = 0x8
export const MNT_DETACH = 0x2

/** Bytes of the cpu_set_t glibc uses (1024 CPUs). */
export const CPU_SET_BYTES = 128

export const Rlimit = koffi.struct('kbx_rlimit', { rlim_cur: 'uint64_t', rlim_max: 'uint64_t' })

export interface RlimitValue {
  rlim_cur: bigint | number
  rlim_max: bigint | number
}

export interface LibC {
  close(fd: number): number
  if_nametoindex(name: string): number
  /** buf must hold IF_NAMESIZE (16) bytes; returns null when the index is unknown. */
  if_indextoname(ifindex: number, buf: Buffer): string | null
  getrlimit(resource: number, out: RlimitValue): number
  setrlimit(resource: number, limit: RlimitValue): number
  mount(source: string, target: string, fstype: string, flags: number, data: string | null): number
  umount2(target: string, flags: number): number
  /** pid 0: the calling thread. mask: cpu_set_t bytes. */
  sched_getaffinity(pid: number, size: number, mask: Buffer): number
  sched_setaffinity(pid: number, size: number, mask: Buffer): number
  sched_getcpu(): number
  /** Moves the CALLING THREAD into the namespace of fd. */
  setns(fd: number, nstype: number): number
  /** ap is a va_list received by a callback (on x86-64 a pointer to __va_list_tag). */
  vsnprintf(buf: Buffer, size: number, format: string, ap: unknown): number
  strerror(errnum: number): string
}

let libcInstance: LibC | undefined

/** libc.so.6, bound on first use. */
export function libc(): LibC {
  if (libcInstance) return libcInstance
  const lib = openLibrary('libc', ['libc.so.6'], 'kbx needs glibc (libc.so.6)')
  libcInstance = {
    close: lib.func('int close(int fd)'),
    if_nametoindex: lib.func('unsigned int if_nametoindex(const char *ifname)'),
    if_indextoname: lib.func('const char *if_indextoname(unsigned int ifindex, uint8_t *ifname)'),
    getrlimit: lib.func('int getrlimit(int resource, _Out_ kbx_rlimit *rlim)'),
    setrlimit: lib.func('int setrlimit(int resource, const kbx_rlimit *rlim)'),
    mount: lib.func(
      'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
    ),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    sched_getaffinity: lib.func('int sched_getaffinity(int pid, size_t size, uint8_t *mask)'),
    sched_setaffinity: lib.func('int sched_setaffinity(int pid, size_t size, const uint8_t *mask)'),
    sched_getcpu: lib.func('int sched_getcpu()'),
    setns: lib.func('int setns(int fd, int nstype)'),
    vsnprintf: lib.func('int vsnprintf(uint8_t *buf, size_t size, const char *format, void *ap)'),
    strerror: lib.func('const char *strerror(int errnum)'),
  }
  return libcInstance
}
