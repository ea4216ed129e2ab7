// A quoter: two buy and two sell orders a tick apart around a mid price (--price, spread and tick from
// --strategy-param). On every fill it moves the mid a tick away from the side that was hit, replaces the orders
// left on that side at the new prices, sends a new order in place of the filled one, and cancels the other side's
// order furthest from the mid for a new one at its best price; after refreshMs without a fill it does the latter
// on both sides. After `fills` fills (--orders, or --strategy-param fills=N) it cancels everything and stops once
// its book is empty.
//   fix-tcp --strategy examples/strategies/quoter.ts --orders 20 --strategy-param spread=0.04
import type { ExecutionReport, Side, StrategyContext } from '@kbx/fix'

const LEVELS = 2
let mid = 0
let fills = 0
let lastFillMs = 0
let done = false

const param = (ctx: StrategyContext, name: string, otherwise: number) => Number(ctx.params[name] ?? otherwise)

/** Level 0 is the best price on its side. */
function priceAt(ctx: StrategyContext, side: Side, level: number): number {
  const away = param(ctx, 'spread', 0.02) / 2 + level * param(ctx, 'tick', 0.01)
  return Number((side === 'buy' ? mid - away : mid + away).toFixed(8))
}

/** Live orders of a side, best price first. */
function sideOf(ctx: StrategyContext, side: Side) {
  return ctx.orders().filter((o) => o.side === side).sort((a, b) => (side === 'buy' ? b.price - a.price : a.price - b.price))
}

/** The side that was hit: its orders one level further out, a new one at the best price. */
function requote(ctx: StrategyContext, side: Side): void {
  sideOf(ctx, side).forEach((o, level) => ctx.replace(o.clOrdId, { price: priceAt(ctx, side, level + 1) }))
  ctx.newOrder({ side, price: priceAt(ctx, side, 0) })
}

/** The order furthest from the mid canceled, a new one at the best price (only if it could be canceled now). */
function refresh(ctx: StrategyContext, side: Side): void {
  const worst = sideOf(ctx, side).pop()
  if (worst !== undefined && ctx.cancel(worst.clOrdId) !== undefined) ctx.newOrder({ side, price: priceAt(ctx, side, 0) })
}

function windDown(ctx: StrategyContext): void {
  if (ctx.orders().length === 0 && ctx.inFlight === 0) ctx.stop(`${fills} fills`)
  else ctx.cancelAll() // orders still waiting for their ack are canceled at a later call
}

export function onLogon(ctx: StrategyContext): void {
  ctx.setTimer(param(ctx, 'refreshMs', 100))
  if (mid !== 0) return // logged on again after a reconnection: the quotes are still there
  mid = ctx.config.price
  lastFillMs = Date.now()
  for (const side of ['buy', 'sell'] as const) for (let level = 0; level < LEVELS; level++) ctx.newOrder({ side, price: priceAt(ctx, side, level) })
}

export function onExecutionReport(ctx: StrategyContext, report: ExecutionReport): void {
  if (done) return windDown(ctx)
  if (report.lastQty <= 0 || report.side === undefined) return
  const hit = report.side
  fills++
  lastFillMs = Date.now()
  mid += hit === 'buy' ? -param(ctx, 'tick', 0.01) : param(ctx, 'tick', 0.01)
  ctx.emit('fill', { clOrdId: report.clOrdId, side: hit, qty: report.lastQty, px: report.lastPx, mid: Number(mid.toFixed(8)), fills })
  if (fills >= param(ctx, 'fills', ctx.config.orders ?? 10)) {
    done = true
    return windDown(ctx)
  }
  requote(ctx, hit)
  refresh(ctx, hit === 'buy' ? 'sell' : 'buy')
}

export function onTimer(ctx: StrategyContext): void {
  if (done) return windDown(ctx)
  if (Date.now() - lastFillMs < param(ctx, 'refreshMs', 100)) return
  lastFillMs = Date.now()
  refresh(ctx, 'buy')
  refresh(ctx, 'sell')
}
