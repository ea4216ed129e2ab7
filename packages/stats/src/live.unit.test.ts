import t from 'tap'
import { formatLiveLine, formatMicros, liveLineEnabled } from './live.js'
import { TtyStatus } from './tty.js'

t.test('the live line is drawn on a terminal unless --no-live, never when stderr is piped', async (t) => {
  t.equal(liveLineEnabled({ isTTY: true }), true, 'terminal, no option')
  t.equal(liveLineEnabled({ isTTY: true, live: true }), true, 'terminal, default --live')
  t.equal(liveLineEnabled({ isTTY: true, live: false }), false, 'terminal, --no-live')
  t.equal(liveLineEnabled({ isTTY: false }), false, 'piped')
  t.equal(liveLineEnabled({ isTTY: false, live: true }), false, 'piped even with live on')
  t.equal(new TtyStatus({ enabled: liveLineEnabled({ isTTY: false }) }).enabled, false)
})

t.test('rate, totals and p50/p99 so far on one line', async (t) => {
  const line = formatLiveLine({
    tool: 'quic-flood',
    elapsedSec: 12.7,
    rate: { value: 102345.4, unit: 'tx/s' },
    totals: { acked: 1234567, sent: 1240000n },
    latency: { label: 'ack', count: 1234567, p50: 400.6, p99: 985.6 },
  })
  t.equal(line, 'quic-flood 12s │ 102,345 tx/s │ acked 1,234,567  sent 1,240,000 │ ack p50 400.6µs p99 985.6µs')
  t.notMatch(line, /[\r\n]/, 'one line')
  t.equal(formatLiveLine({ tool: 'ab-feed', rate: { value: 0, unit: 'pkt/s' }, totals: { sent: 0 }, latency: { count: 0, p50: 0, p99: 0 } }), 'ab-feed │ 0 pkt/s │ sent 0', 'no percentiles before anything was measured')
})

t.test('latencies read as µs, ms or s', async (t) => {
  t.equal(formatMicros(12.345), '12.3µs')
  t.equal(formatMicros(1611.8), '1.61ms')
  t.equal(formatMicros(94634), '94.63ms')
  t.equal(formatMicros(2_500_000), '2.5s')
})
