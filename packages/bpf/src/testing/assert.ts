import { KbxError } from '@kbx/errors'

export interface Asserter {
  fail(message: string): unknown
  pass(message: string): unknown
}

type ErrorClass<E extends KbxError> = abstract new (...args: never[]) => E

/** Assert fn throws a KbxError of class `type` (default: any KbxError) carrying the errno named `code`; returns the error. */
export function throwsErrno(t: Asserter, fn: () => unknown, code: string, message: string): KbxError | undefined
export function throwsErrno<E extends KbxError>(t: Asserter, fn: () => unknown, code: string, message: string, type: ErrorClass<E>): E | undefined
export function throwsErrno(t: Asserter, fn: () => unknown, code: string, message: string, type: ErrorClass<KbxError> = KbxError): KbxError | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof type && err.code === code) {
      t.pass(message)
      return err
    }
    t.fail(`${message}: got ${err instanceof KbxError ? `${err.name} ${err.code ?? ''} ${err.message}` : String(err)}`)
    return undefined
  }
  t.fail(`${message}: nothing thrown`)
  return undefined
}
