import { XskError, errnoName, hintForErrno } from '@kbx/errors'
import { libkbx, libkbxBatch, nativeError, type LibKbx, type LibKbxBatch } from '@kbx/ffi'

export function native(): LibKbx {
  return libkbx()
}

/** The batch path: pointers as addresses, ~75 ns a call. */
export function batchCalls(): LibKbxBatch {
  return libkbxBatch()
}

const hints: Record<string, string> = {
  EBUSY:
    'the queue is bound by another AF_XDP socket (this or another process); one closed a moment ago may still be releasing it',
  EOPNOTSUPP:
    'the driver has no zero-copy AF_XDP (veth has none): use zeroCopy "try" or "never" for copy mode',
  ENODEV: 'no such network interface; list them with `ip link`',
  EINVAL: 'the kernel rejected the arguments: check the queue id (ethtool -l IF), ring sizes and frame size',
  ENOMEM: 'out of memory for the UMEM or rings; a smaller frameCount or ring size may help',
  ENOBUFS: 'out of locked memory for the UMEM: raise RLIMIT_MEMLOCK (ulimit -l) or run with CAP_IPC_LOCK',
  EPERM: 'AF_XDP needs root or CAP_NET_RAW + CAP_NET_ADMIN (and CAP_IPC_LOCK for large UMEMs)',
  EAFNOSUPPORT: 'the kernel has no AF_XDP (CONFIG_XDP_SOCKETS)',
  ENOSPC: 'a UMEM takes at most 64 sockets',
  EUCLEAN: 'frame accounting is corrupt: this is a bug in libkbx',
}

/** What to do about an errno from an AF_XDP operation. */
export function hintFor(errno: number): string | undefined {
  return hints[errnoName(errno)] ?? hintForErrno(errno)
}

/** An XskError for a negative errno returned by libkbx: the operation and particulars libkbx recorded. */
export function xskError(rc: number, fallbackOp: string, hint?: string): XskError {
  return nativeError(rc, fallbackOp, { type: XskError, hint: hint ?? hintFor })
}
