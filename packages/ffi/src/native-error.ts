import { SystemError } from '@kbx/errors'
import { libkbx, type KbxErrorRecordValue } from './libkbx.js'

/**
 * The one reader of libkbx's error channel (native/include/kbx_error.h): every native module (the AF_XDP
 * core, ab, quic, fix) records the operation, errno and particulars of a failure before returning the
 * negative errno; these turn that record into the typed error. Read right after the failing call, on the
 * same thread; the record is taken (forgotten) by the read.
 */

export interface NativeFailure {
  /** What the native side was doing ("bind AF_XDP socket"), or the caller's words when it recorded nothing. */
  op: string
  /** Positive errno: the one the call returned. */
  errno: number
  /** The particulars in words ("veth0 queue 0: copy mode, 3 attempts"), '' when none were recorded. */
  message: string
}

/**
 * What libkbx recorded for the failure that returned rc (a negative errno). A record whose errno is not
 * rc's belongs to another failure: then only fallbackOp and rc's errno are known.
 */
export function takeNativeFailure(rc: number, fallbackOp: string): NativeFailure {
  const record: Partial<KbxErrorRecordValue> = {}
  const recorded = libkbx().kbx_error_take(record)
  const errno = Math.abs(rc) || recorded
  if (recorded !== 0 && recorded === errno && record.operation) {
    return { op: record.operation, errno, message: record.message ?? '' }
  }
  return { op: fallbackOp, errno, message: '' }
}

/** SystemError or a subclass (XskError, BpfError): the class of error a native failure becomes. */
export type NativeErrorClass<E extends SystemError> = new (
  op: string,
  errno: number,
  options?: { hint?: string; detail?: string },
) => E

export interface NativeErrorOptions<E extends SystemError> {
  /** Default SystemError. */
  type?: NativeErrorClass<E>
  /** What the user can do; a function gets the errno. Default: @kbx/errors' hint for the errno. */
  hint?: string | ((errno: number) => string | undefined)
}

/**
 * The typed error for a native call that returned rc (a negative errno): the operation, errno and
 * particulars libkbx recorded (fallbackOp when it recorded nothing for this errno) and a hint.
 * Message: "<operation> failed: <ERRNO> (<particulars>)".
 */
export function nativeError<E extends SystemError = SystemError>(
  rc: number,
  fallbackOp: string,
  options: NativeErrorOptions<E> = {},
): E {
  const failure = takeNativeFailure(rc, fallbackOp)
  const Type = (options.type ?? SystemError) as NativeErrorClass<E>
  const hint = typeof options.hint === 'function' ? options.hint(failure.errno) : options.hint
  return new Type(failure.op, failure.errno, {
    ...(hint === undefined ? {} : { hint }),
    ...(failure.message === '' ? {} : { detail: failure.message }),
  })
}
