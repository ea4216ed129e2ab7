import { KbxError } from '@kbx/errors'

export interface Asserter {
  fail(message: string): unknown
  pass(message: string): unknown
}

/** Assert fn throws a KbxError of class `type` carrying the errno named `code`; returns the error. */
export function throwsErrno<E extends KbxError>(
  t: Asserter,
  fn: () => unknown,
  code: string,
  message: string,
  type: abstract new (...args: never[]) => E = KbxError as unknown as abstract new (...args: never[]) => E,
): E | undefined {
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
