// ab-feed's live line (normal and --replay runs): frames sent per second, and per line so far.
import type { IntervalTick, ToolContext } from '@kbx/cli'
import { RateMeter, formatLiveLine } from '@kbx/stats'

export function feedLiveLine(ctx: ToolContext<object>): (sent: { A: number | bigint; B: number | bigint }, tick: IntervalTick) => void {
  const meter = new RateMeter<{ sent: number }>()
  return (sent, tick) => {
    if (!ctx.status.enabled) return
    const rate = meter.sample({ sent: Number(sent.A) + Number(sent.B) }).rates.sent
    ctx.status.update(formatLiveLine({ tool: ctx.tool, elapsedSec: Number(tick.elapsedNs) / 1e9, rate: { value: rate, unit: 'frames/s' }, totals: { A: sent.A, B: sent.B } }))
  }
}
