// fix-tcp --strategy against QuickFIX (native/build/fix-quickfix-acceptor) over --io xdp and --io socket: each example
// of examples/strategies (ping-pong, quoter, burst) ends with every ClOrdID in a final state and a clean Logout;
// ping-pong does what fix-tcp does without a strategy (the reflex sending each next order over xdp); the burst
// sender under --max-msg-rate 100 never puts more than 100 application messages in a second of QuickFIX's log;
// a strategy that throws ends the run (exit 1) after a clean Logout; a bad strategy file is a usage error (exit 2)
// before anything is attached; FixClient runs a strategy object in this process (attached before or after connect).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { repoRoot } from '@kbx/ffi'
import { FixClient } from '@kbx/fix'
import type { LogoutInfo, StrategyContext } from '@kbx/fix'
import { waitUntil } from '@kbx/testbed'
import type { ToolRun } from '@kbx/testbed'
import { FIX_PORT, appMessagesPerSecond, fixBed, named, nothingAttached, runFixTcp, startFixTcp } from './testing/fix-bed.js'
import type { FixBed } from './testing/fix-bed.js'

const example = (name: string) => join(repoRoot, 'examples/strategies', `${name}.ts`)
type Io = 'xdp' | 'socket'

/** A run of `strategy` with its own store (both sides start from 1). */
function runStrategy(b: FixBed, strategy: string, io: Io, args: string[]) {
  return runFixTcp({ ...b, store: join(b.dir, `${strategy}-${io}.json`) }, ['--strategy', example(strategy), '--reset', ...args], io)
}

/** Nothing left open: every ClOrdID final, none unknown or given up. */
function everyOrderFinal(t: Test, end: Record<string, any>, what: string): void {
  const l = end.lifecycle
  t.same({ new: l.new, partiallyFilled: l.partiallyFilled, pending: l.pending, unknown: l.unknown, requestsTimedOut: l.requestsTimedOut }, { new: 0, partiallyFilled: 0, pending: 0, unknown: 0, requestsTimedOut: 0 }, `${what}: every ClOrdID final (${JSON.stringify(l)})`)
  t.equal(l.filled + l.canceled + l.rejected, end.orders.sent, `${what}: each of the ${end.orders.sent} orders ended filled, canceled or rejected`)
  t.equal(end.orders.outstanding, 0)
}

/** The strategy stopped the run, the Logout exchanged, QuickFIX saw it from us and refused nothing. */
async function cleanLogout(t: Test, b: FixBed, run: { end: Record<string, any> }, logoutsBefore: number, what: string): Promise<void> {
  t.equal(run.end.closed, 'logout', `${what}: ended with a Logout exchange`)
  await waitUntil('QuickFIX to log the session out', () => named(b.acceptor, 'logout').length > logoutsBefore)
  const logout = named(b.acceptor, 'logout')[logoutsBefore]
  t.equal(logout?.data.initiatedBy, 'peer', `${what}: QuickFIX saw our Logout`)
  t.notOk(logout?.data.textSent, 'and answered it without complaint')
  t.equal(named(b.acceptor, 'admin').filter((e) => e.data.msgType === '3').length, 0, 'no session Reject either way')
  t.equal(run.end.session.rejectsReceived, 0)
}

for (const io of ['xdp', 'socket'] as const) {
  t.test(`--io ${io}: ping-pong does what fix-tcp does without a strategy`, async (t) => {
    const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '1'] })
    const plain = await runFixTcp({ ...b, store: join(b.dir, 'plain.json') }, ['--orders', '200', '--reset'], io)
    await cleanLogout(t, b, plain, 0, 'without --strategy')
    const pingPong = await runStrategy(b, 'ping-pong', io, ['--orders', '200'])
    await cleanLogout(t, b, pingPong, 1, 'ping-pong')
    t.equal(pingPong.end.stoppedBy, 'strategy')
    t.same(pingPong.end.orders, plain.end.orders, `the same orders: ${JSON.stringify(pingPong.end.orders)}`)
    t.same(pingPong.end.lifecycle, plain.end.lifecycle, 'the same lifecycle')
    t.equal(pingPong.end.orders.acked, 200)
    t.equal(pingPong.end.orders.filled, 200)
    everyOrderFinal(t, pingPong.end, 'ping-pong')
    if (io === 'xdp') {
      t.equal(plain.end.reflex.sent, 199, 'without a strategy the reflex sent every order after the first')
      t.equal(pingPong.end.reflex.sent, 199, 'ping-pong handed the reflex every order after the first too')
      t.equal(pingPong.end.strategy.reflexOrders, 199)
      t.equal(pingPong.end.internalReflexUs.count, 199, 'each timed in C')
    } else {
      t.equal(pingPong.end.reflex, undefined, 'no reflex over the kernel socket')
    }
    t.equal(named(b.acceptor, 'order').length, 400, 'QuickFIX saw 200 orders from each')
    nothingAttached(t, b, [plain, pingPong])
  })

  t.test(`--io ${io}: the quoter and the burst sender end with every ClOrdID final`, async (t) => {
    // every second new order filled at once: each fill makes the quoter send two, so fills keep coming
    const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '2'] })
    const quoter = await runStrategy(b, 'quoter', io, ['--orders', '15', '--strategy-param', 'spread=0.04'])
    everyOrderFinal(t, quoter.end, 'quoter')
    const fills = named(quoter, 'fill')
    t.equal(fills.length, 15, 'the quoter reported 15 fills (its own events)')
    t.ok(quoter.end.lifecycle.filled >= 15, `QuickFIX filled ${quoter.end.lifecycle.filled} orders (some after the 15th, sent before it)`)
    t.ok(quoter.end.lifecycle.replaced > 0, `it replaced orders (${quoter.end.lifecycle.replaced})`)
    t.ok(quoter.end.lifecycle.canceled > 0, `and canceled orders (${quoter.end.lifecycle.canceled})`)
    t.equal(named(b.acceptor, 'replace').length, quoter.end.lifecycle.replaced, 'QuickFIX replaced as many')
    t.equal(quoter.end.stoppedBy, 'strategy')
    t.equal(quoter.end.strategy.stopReason, '15 fills')
    await cleanLogout(t, b, quoter, 0, 'quoter')

    // 300 ms of orders in 20 ms ticks: at least 3 bursts even when the loaded machine stalls the loop for 100 ms
    const burst = await runStrategy(b, 'burst', io, ['--orders', '300', '--rate', '1000', '--strategy-param', 'tickMs=20'])
    everyOrderFinal(t, burst.end, 'burst')
    t.equal(burst.end.orders.sent, 300)
    t.equal(burst.end.orders.acked, 300)
    t.equal(burst.end.lifecycle.filled, 150, 'QuickFIX filled every second order')
    t.equal(burst.end.lifecycle.canceled, 150, 'and the burst sender canceled the rest')
    const bursts = named(burst, 'burst')
    t.ok(bursts.length >= 3 && bursts.length < 300, `sent in ${bursts.length} bursts`)
    t.equal(bursts.reduce((n, e) => n + (e.data.orders as number), 0), 300)
    await cleanLogout(t, b, burst, 1, 'burst')
    nothingAttached(t, b, [quoter, burst])
  })
}

t.test('--max-msg-rate 100 and the burst sender: no second with more than 100 application messages at QuickFIX', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '3'] })
  const run = await runStrategy(b, 'burst', 'xdp', ['--orders', '300', '--rate', '1000', '--max-msg-rate', '100'])
  everyOrderFinal(t, run.end, 'burst under the throttle')
  t.ok(run.end.throttle.queued > 0, `messages were held (${run.end.throttle.queued})`)
  t.equal(run.end.throttle.released, run.end.throttle.queued, 'every held message released')
  t.equal(run.end.throttle.rejected, 0)
  const perSecond = appMessagesPerSecond(b)
  const counts = [...perSecond.values()]
  const o = run.end.orders
  t.equal(counts.reduce((a, n) => a + n, 0), o.sent + o.cancelsSent, `QuickFIX logged the ${o.sent} orders and ${o.cancelsSent} cancels sent`)
  t.ok(o.cancelsSent >= 200, 'a cancel for each order left resting (some more for orders filled as their cancel went)')
  t.ok(perSecond.size >= 5, `spread over ${perSecond.size} seconds`)
  t.ok(Math.max(...counts) <= 100, `at most 100 in any second: ${JSON.stringify(Object.fromEntries(perSecond))}`)
  await cleanLogout(t, b, run, 0, 'burst under the throttle')
  nothingAttached(t, b, [run])
})

t.test('a strategy that throws: a clear error, a clean Logout, exit 1; a bad file: exit 2, nothing attached', async (t) => {
  const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '0'] })
  const throwing = join(b.dir, 'throwing.mjs')
  writeFileSync(throwing, "let n = 0\nexport function onLogon(ctx) { for (let i = 0; i < 5; i++) ctx.newOrder() }\nexport function onExecutionReport(ctx, r) { if (++n === 3) throw new Error('bad model') }\n")
  const run = startFixTcp({ ...b, store: join(b.dir, 'throwing.json') }, ['--strategy', throwing, '--reset'], 'xdp')
  const exit = await run.exited
  t.equal(exit.code, 1, 'exit 1')
  t.match(run.stderr(), /strategy throwing threw in onExecutionReport: bad model/, 'the error names the strategy, the handler and the message')
  t.same(named(run, 'strategy-error').map((e) => e.data), [{ strategy: 'throwing', handler: 'onExecutionReport', message: 'bad model' }])
  const end = run.events.find((e) => e.event === 'end')?.data as Record<string, any>
  t.equal(end.stoppedBy, 'strategy-error')
  t.equal(end.orders.acked, 5, 'the orders in flight were answered before the Logout')
  await cleanLogout(t, b, { end }, 0, 'after the throw')
  t.equal(run.events.find((e) => e.event === 'error')?.data.op, 'strategy onExecutionReport')

  const noHandlers = join(b.dir, 'nothing.mjs')
  writeFileSync(noHandlers, 'export const x = 1\n')
  const bad = async (file: string, pattern: RegExp): Promise<ToolRun> => {
    const r = startFixTcp(b, ['--strategy', file], 'xdp')
    t.equal((await r.exited).code, 2, `${file}: exit 2`)
    t.match(r.stderr(), pattern)
    return r
  }
  await bad(join(b.dir, 'missing.ts'), /--strategy .*missing\.ts: no such file/)
  await bad(noHandlers, /exports none of onLogon, onExecutionReport, onReject, onTimer, onLogout/)
  nothingAttached(t, b)
})

for (const io of ['socket', 'xdp'] as const) {
  t.test(`FixClient: a strategy object in this process, over --io ${io}`, async (t) => {
    const b = await fixBed(t, { acceptor: 'quickfix', acceptorArgs: ['--fill-every', '2'] })
    const lines: string[] = []
    const client = new FixClient({ iface: b.iface, connect: { ip: b.exchIp, port: FIX_PORT }, io, sender: 'CLIENT1', target: 'EXCH', store: join(b.dir, 'client.json'), reset: true, price: '10.5', jsonOut: { write: (s: string) => void lines.push(s) }, logLevel: 'warn' })
    t.teardown(() => client.close())
    const seen: string[] = []
    const logouts: LogoutInfo[] = []
    let sent = 0
    // over xdp attached after connect() (the XDP program and the AF_XDP socket are this process's)
    if (io === 'xdp') await client.connect()
    client.attach({
      onLogon(ctx: StrategyContext) {
        for (; sent < 4; sent++) ctx.newOrder({ qty: 10 + sent })
        ctx.setTimer(20)
      },
      onExecutionReport(_ctx: StrategyContext, r: { execType: string }) {
        seen.push(r.execType)
      },
      onLogout(_ctx: StrategyContext, info: LogoutInfo) {
        logouts.push(info)
      },
      onTimer(ctx: StrategyContext) {
        if (ctx.inFlight > 0) return
        const book = ctx.orders()
        if (book.length === 0) return ctx.stop('book empty')
        ctx.emit('book', { orders: book.map((o) => ({ clOrdId: o.clOrdId, qty: o.qty, price: o.price, state: o.state })) })
        ctx.cancelAll()
      },
    })
    if (io === 'socket') await client.connect()
    const end = (await client.run()) as Record<string, any>
    t.equal(end.stoppedBy, 'strategy')
    everyOrderFinal(t, end, 'FixClient')
    t.same({ filled: end.lifecycle.filled, canceled: end.lifecycle.canceled }, { filled: 2, canceled: 2 }, 'two filled at once, two canceled')
    const book = lines.map((l) => JSON.parse(l)).find((e) => e.event === 'book')
    t.same(book?.data.orders.map((o: any) => [o.qty, o.price, o.state]), [[10, 10.5, 'new'], [12, 10.5, 'new']], 'the book held the resting orders with their terms')
    t.ok(seen.includes('F') && seen.includes('4'), 'fills and cancels reached the strategy')
    t.same(logouts, [{ reason: 'logout', reconnecting: false }], 'onLogout after the Logout exchange')
    await cleanLogout(t, b, { end }, 0, 'FixClient')
    await client.close()
    nothingAttached(t, b)
  })
}
