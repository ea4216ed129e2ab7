import { BpfError, errnoName } from '@kbx/errors'
import { lastErrno } from '@kbx/ffi'
import { libbpfStrerror } from './libbpf-log.js'

/** libbpf's own error codes start here (LIBBPF_ERRNO__START). */
const LIBBPF_ERRNO_START = 4000
const EINVAL = 22

/** The errno of a failed libbpf call: the negative return when there is one, else errno. */
export function errnoOf(ret: number | null | undefined): number {
  if (typeof ret === 'number' && ret < 0) return -ret
  const e = lastErrno()
  return e > 0 ? e : EINVAL // libbpf failed without saying why
}

/**
 * A BpfError for a failed call; its last libbpf warnings go into the detail. libbpf's own error codes
 * (4000 and up, e.g. "BPF object format invalid") are not errnos: they become EINVAL plus libbpf's text.
 */
export function bpfError(
  op: string,
  errno: number,
  options: { hint?: string; detail?: string; verifierLog?: string; messages?: string[]; cause?: unknown } = {},
): BpfError {
  const details: string[] = []
  if (options.detail) details.push(options.detail)
  if (errno >= LIBBPF_ERRNO_START) details.push(`${libbpfStrerror(errno)} (libbpf error ${errno})`)
  const lastMessages = (options.messages ?? []).filter((m) => !m.includes('-- BEGIN PROG LOAD LOG --')).slice(-3)
  if (lastMessages.length > 0) details.push(`libbpf: ${lastMessages.join(' | ')}`)
  return new BpfError(op, errno >= LIBBPF_ERRNO_START ? EINVAL : errno, {
    ...(options.hint === undefined ? {} : { hint: options.hint }),
    ...(details.length === 0 ? {} : { detail: details.join('; ') }),
    ...(options.verifierLog === undefined ? {} : { verifierLog: options.verifierLog }),
    ...(options.cause === undefined ? {} : { cause: options.cause }),
  })
}

export { errnoName }
