// A burst sender with a rate: --orders N NewOrderSingles at --rate R a second, sent in bursts every tickMs (the
// orders due since the last tick), through the session's throttle (--max-msg-rate) like any other. When all are
// sent it cancels whatever rests (at each tick), and stops once its book is empty.
//   fix-tcp --strategy examples/strategies/burst.ts --orders 300 --rate 1000 --strategy-param tickMs=20
import type { StrategyContext } from '@kbx/fix'

let sent = 0
let startedMs = 0

function windDown(ctx: StrategyContext): void {
  if (ctx.orders().length === 0 && ctx.inFlight === 0) ctx.stop('done')
  else ctx.cancelAll() // orders still waiting for their ack are canceled at a later call
}

export function onLogon(ctx: StrategyContext): void {
  startedMs ||= Date.now()
  ctx.setTimer(Number(ctx.params['tickMs'] ?? 10))
}

export function onTimer(ctx: StrategyContext): void {
  const total = ctx.config.orders ?? 100
  const rate = ctx.config.rate ?? 1000
  const due = Math.min(total, Math.floor(((Date.now() - startedMs) / 1000) * rate) + 1)
  const before = sent
  for (; sent < due; sent++) ctx.newOrder()
  if (sent > before) ctx.emit('burst', { orders: sent - before, sent, inFlight: ctx.inFlight })
  if (sent >= total) windDown(ctx) // at each tick, after the reports that arrived since: few cancels race a fill
}
