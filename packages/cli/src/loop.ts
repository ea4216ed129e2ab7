export type StopReason = 'signal' | 'duration' | 'done'

/** The part of a ToolContext runLoop needs. */
export interface LoopContext {
  signal: AbortSignal
  opts?: { interval?: number | undefined; duration?: number | undefined }
}

export interface IntervalTick {
  /** 1 for the first interval. */
  index: number
  /** Since the loop started. */
  elapsedNs: bigint
}

export interface RunLoopOptions {
  /** Seconds between onInterval calls; default ctx.opts.interval, else 1. 0 = never. */
  intervalSec?: number
  /** Stop after this many seconds; default ctx.opts.duration, else 0 = until stopped. */
  durationSec?: number
  /** Longest stretch of back-to-back steps before yielding to the event loop (default 10 ms). */
  sliceMs?: number
  onInterval?: (tick: IntervalTick) => void | Promise<void>
  /**
   * Called after each step. A promise pauses the steps (the event loop runs) until it settles: for I/O that
   * arrives as events, whose step has nothing to block on. Undefined (or no wait) goes straight on. Keep the
   * promise short (it delays onInterval and the duration) and settle it early on the events it waits for.
   */
  wait?: () => Promise<void> | undefined
}

/**
 * Runs a synchronous batch step (one native call that returns within a few ms) over and over.
 * Yields to the event loop at least every `sliceMs` so signal handlers run, calls `onInterval`
 * every interval (between steps), and stops on the abort signal, at the duration,
 * or when `step` returns false.
 */
export async function runLoop(ctx: LoopContext, step: () => boolean | void, options: RunLoopOptions = {}): Promise<StopReason> {
  if (ctx.signal.aborted) return 'signal'
  const intervalSec = options.intervalSec ?? ctx.opts?.interval ?? 1
  const durationSec = options.durationSec ?? ctx.opts?.duration ?? 0
  const started = process.hrtime.bigint()
  const stop = new AbortController()
  let reason: StopReason = 'done'
  const end = (why: StopReason): void => {
    if (stop.signal.aborted) return
    reason = why
    stop.abort()
  }
  const onSignal = (): void => end('signal')
  ctx.signal.addEventListener('abort', onSignal, { once: true })
  const deadline = durationSec > 0 ? started + BigInt(Math.round(durationSec * 1e9)) : 0n
  const intervalNs = intervalSec > 0 && options.onInterval ? BigInt(Math.round(intervalSec * 1e9)) : 0n
  let nextTick = intervalNs > 0n ? started + intervalNs : 0n
  let index = 0
  // A due tick pauses the steps until onInterval has finished; missed ticks are skipped, never burst.
  let tickDue = false
  let pause: Promise<void> | undefined
  const guardedStep = (): boolean => {
    if (step() === false) {
      end('done')
      return false
    }
    const now = process.hrtime.bigint()
    if (deadline !== 0n && now >= deadline) {
      end('duration')
      return false
    }
    if (nextTick !== 0n && now >= nextTick) {
      while (nextTick <= now) nextTick += intervalNs
      tickDue = true
    }
    pause = options.wait?.()
    return !tickDue && pause === undefined
  }
  try {
    while (!stop.signal.aborted) {
      await runBatchLoop(guardedStep, { sliceMs: options.sliceMs ?? 10, signal: stop.signal })
      if (tickDue && !stop.signal.aborted) {
        tickDue = false
        await options.onInterval?.({ index: ++index, elapsedNs: process.hrtime.bigint() - started })
      }
      if (pause !== undefined) {
        const waiting = pause
        pause = undefined
        if (!stop.signal.aborted) await settledOrAborted(waiting, stop.signal)
      }
    }
  } finally {
    ctx.signal.removeEventListener('abort', onSignal)
  }
  return reason
}

/**
 * `waiting` settled or `signal` aborted, whichever comes first, with nothing left attached afterwards. Not
 * Promise.race with a promise that stays pending the whole run: each race leaves a reaction on it, and at a
 * wait every 10 ms that kept ~2 MB/min of the heap alive (quic-flood's soak).
 */
export function settledOrAborted(waiting: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
    waiting.then(done, (err: unknown) => {
      signal.removeEventListener('abort', done)
      reject(err)
    })
  })
}

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
