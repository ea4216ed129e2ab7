// fix-tcp's own behaviour without --strategy (one order at a time): --orders N NewOrderSingles, each sent once the
// previous one is answered, then Logout. Over --io xdp the native reflex sends every order after the first in C,
// in the step that received the ExecutionReport; elsewhere (--io socket, --max-msg-rate) this code does.
//   fix-tcp --strategy examples/strategies/ping-pong.ts --orders 1000
import type { ExecutionReport, StrategyContext } from '@kbx/fix'

let sent = 0

/** The next order once nothing is in flight; the stop once all are sent and answered. */
function next(ctx: StrategyContext): void {
  if (ctx.inFlight > 0) return
  if (sent >= (ctx.config.orders ?? 0)) return ctx.stop('done')
  ctx.newOrder()
  sent++ // an order the throttle refused counts too, as it does for --orders
}

export function onLogon(ctx: StrategyContext): void {
  next(ctx)
  ctx.reflex({ count: (ctx.config.orders ?? 0) - sent })
  ctx.setTimer(100) // picks up after a reconnection or an order given up as unknown
}

export function onExecutionReport(ctx: StrategyContext, report: ExecutionReport): void {
  if (report.reflexClOrdId !== undefined) sent++ // the reflex already answered this report with the next order
  next(ctx)
}

export const onTimer = next
