// Helpers for tests that look at what a call throws.

/** What fn throws (undefined when it returns), so a test can look at the error's fields. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}
