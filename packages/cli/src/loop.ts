import { setImmediate as yieldToEventLoop } from 'node:timers/promises'

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
}

/**
 * Runs a synchronous batch step (one native call that returns within a few ms) over and over.
 * Yields to the event loop at least every `sliceMs` so signal handlers run, calls `onInterval`
 * every interval, and stops on the abort signal, at the duration, or when `step` returns false.
 */
export async function runLoop(ctx: LoopContext, step: () => boolean | void, options: RunLoopOptions = {}): Promise<StopReason> {
  const intervalSec = options.intervalSec ?? ctx.opts?.interval ?? 1
  const durationSec = options.durationSec ?? ctx.opts?.duration ?? 0
  const sliceNs = BigInt(Math.round((options.sliceMs ?? 10) * 1e6))
  const intervalNs = intervalSec > 0 ? BigInt(Math.round(intervalSec * 1e9)) : 0n
  const started = process.hrtime.bigint()
  const deadline = durationSec > 0 ? started + BigInt(Math.round(durationSec * 1e9)) : 0n
  let nextInterval = intervalNs > 0n ? started + intervalNs : 0n
  let index = 0

  for (;;) {
    if (ctx.signal.aborted) return 'signal'
    const sliceEnd = process.hrtime.bigint() + sliceNs
    let now: bigint
    do {
      if (step() === false) return 'done'
      now = process.hrtime.bigint()
    } while (now < sliceEnd && (deadline === 0n || now < deadline) && (nextInterval === 0n || now < nextInterval))

    if (deadline !== 0n && now >= deadline) return 'duration'
    if (nextInterval !== 0n && now >= nextInterval) {
      index++
      // Skip missed ticks rather than firing a burst after a stall.
      while (nextInterval <= now) nextInterval += intervalNs
      await options.onInterval?.({ index, elapsedNs: now - started })
    }
    await yieldToEventLoop()
  }
}
