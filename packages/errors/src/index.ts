import { constants } from 'node:os'

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
)

/** Name of a positive errno value, e.g. 1 → "EPERM". */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${errno}`
}

/** Positive errno value for a name, e.g. "EBUSY" → 16. */
export function errnoOf(name: keyof typeof constants.errno): number {
  return constants.errno[name]
}

export interface KbxErrorOptions {
  /** What was being done, e.g. "bpf_object__load" or "bind AF_XDP socket to veth0:0". */
  op: string
  /** Positive errno when the failure came from the kernel or libc. */
  errno?: number
  /** What the user can do about it. */
  hint?: string
  cause?: unknown
}

/** Base of every error kbx raises on purpose. `exitCode` is what a command exits with. */
export class KbxError extends Error {
  readonly op: string
  readonly errno: number | undefined
  readonly hint: string | undefined
  readonly exitCode: number = 1

  constructor(message: string, options: KbxErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.op = options.op
    this.errno = options.errno === undefined ? undefined : Math.abs(options.errno)
    this.hint = options.hint ?? (this.errno === undefined ? undefined : hintForErrno(this.errno))
  }

  get code(): string | undefined {
    return this.errno === undefined ? undefined : errnoName(this.errno)
  }

  /** The error as one object for a JSON `error` event. */
  toJSON(): Record<string, unknown> {
    return {
      type: this.name,
      message: this.message,
      op: this.op,
      ...(this.errno === undefined ? {} : { errno: this.errno, code: this.code }),
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    }
  }
}

/** Bad command-line input or arguments: exit code 2. */
export class UsageError extends KbxError {
  override readonly exitCode = 2
  constructor(message: string, options: Partial<KbxErrorOptions> = {}) {
    super(message, { op: options.op ?? 'parse arguments', ...options })
  }
}

/** A system call or library call failed with an errno. */
export class SystemError extends KbxError {
  constructor(op: string, errno: number, options: { hint?: string; detail?: string; cause?: unknown } = {}) {
    const e = Math.abs(errno)
    const detail = options.detail === undefined ? '' : ` (${options.detail})`
    super(`${op} failed: ${errnoName(e)}${detail}`, { op, errno: e, ...options })
  }
}

/** Loading, verifying, attaching or accessing a BPF object failed. */
export class BpfError extends SystemError {
  /** Tail of the verifier log when the kernel rejected a program. */
  readonly verifierLog: string | undefined
  constructor(
    op: string,
    errno: number,
    options: { hint?: string; detail?: string; verifierLog?: string; cause?: unknown } = {},
  ) {
    super(op, errno, options)
    this.verifierLog = options.verifierLog
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...(this.verifierLog ? { verifierLog: this.verifierLog } : {}) }
  }
}

/** Creating, binding or driving an AF_XDP socket or UMEM failed. */
export class XskError extends SystemError {}

/** An interface, route, neighbour or address could not be resolved. */
export class NetError extends KbxError {
  constructor(message: string, options: KbxErrorOptions) {
    super(message, options)
  }
}

/** The process lacks a privilege it needs. */
export class PermissionError extends KbxError {
  constructor(message: string, options: Partial<KbxErrorOptions> = {}) {
    super(message, {
      op: options.op ?? 'check privileges',
      hint: options.hint ?? 'run as root (sudo), or grant CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN',
      ...(options.errno === undefined ? {} : { errno: options.errno }),
    })
  }
}

/** A kernel or interface feature is missing. */
export class NotSupportedError extends KbxError {
  readonly feature: string
  constructor(feature: string, options: KbxErrorOptions) {
    super(`${feature} is not supported here`, options)
    this.feature = feature
  }
}

export function hintForErrno(errno: number): string | undefined {
  switch (errnoName(errno)) {
    case 'EPERM':
    case 'EACCES':
      return 'run as root (sudo), or grant CAP_BPF and CAP_NET_ADMIN'
    case 'EBUSY':
      return 'the interface or queue is in use by another program or AF_XDP socket; a socket closed a moment ago may still be releasing it'
    case 'EOPNOTSUPP':
      return 'the driver does not support this mode; try --mode skb, or copy mode for AF_XDP'
    case 'ENODEV':
      return 'no such network interface; list them with `ip link`'
    case 'ENOENT':
      return 'no such file or object'
    case 'ENOMEM':
      return 'out of locked memory or map space; a smaller UMEM or ring may help'
    case 'EINVAL':
      return 'the kernel rejected the arguments; check the queue id, ring sizes and mode'
    case 'E2BIG':
      return 'an argument is larger than the kernel allows'
    default:
      return undefined
  }
}

/** Whether `err` is a KbxError (or subclass) carrying the given errno name. */
export function hasErrno(err: unknown, name: keyof typeof constants.errno): boolean {
  return err instanceof KbxError && err.errno === constants.errno[name]
}

export { setupNetCommand, testBedAddressHint, unknownInterfaceHint } from './test-bed.js'
export type { TestBedName } from './test-bed.js'
