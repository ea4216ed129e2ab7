export interface BatchLoopOptions {
  /** Longest stretch of back-to-back steps before yielding to the event loop (default 5 ms). */
  sliceMs?: number
  /**
   * Read the clock every this many steps (default 1). A clock read costs about as much as a small batch
   * of work, so loops of short steps read it less often; the longest stretch without yielding is then up
   * to sliceMs + checkEvery × the longest step, which must stay well under the signal latency you need.
   */
  checkEvery?: number
  /** Stops the loop before the next step once aborted (e.g. from a SIGINT handler). */
  signal?: AbortSignal
}

/**
 * Runs step() back to back, yielding to the event loop every sliceMs so signal handlers and timers run
 * (a synchronous loop would never see SIGINT). Resolves when step() returns false or the signal aborts.
 * Keep each step short: a batch call with a poll timeout of a few ms at most.
 */
export async function runBatchLoop(step: () => boolean | void, options: BatchLoopOptions = {}): Promise<void> {
  const sliceMs = options.sliceMs ?? 5
  const checkEvery = Math.max(1, Math.floor(options.checkEvery ?? 1))
  const signal = options.signal
  for (;;) {
    const sliceEnd = performance.now() + sliceMs
    for (let steps = 1; ; steps++) {
      if (signal?.aborted) return
      if (step() === false) return
      if (steps % checkEvery === 0 && performance.now() >= sliceEnd) break
    }
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}
