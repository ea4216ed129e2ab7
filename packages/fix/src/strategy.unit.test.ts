// The strategy API without a network: loading strategy files (TS and JS, named or default exports; usage errors for
// a missing file or one without handlers), --strategy-param, the option checks, FixClient's options parsed by
// fix-tcp's own table, and a StrategyRunner over a real session and order flow fed ExecutionReports: the book's
// terms and fills, report fields, the reflex's accounting, a throw failing the strategy once.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { UsageError } from '@kbx/errors'
import { JsonLines, createLogger } from '@kbx/stats'
import { buildMessage } from './codec.js'
import { checkOrderOptions } from './client.js'
import { parseFixClientOptions } from './fix-client.js'
import { OrderFlow } from './orders.js'
import { FixSession } from './session.js'
import { MemorySeqStore } from './store.js'
import { collectStrategyParam, loadStrategy } from './strategy.js'
import type { ExecutionReport, Strategy, StrategyContext } from './strategy.js'
import { StrategyRunner } from './strategy-runner.js'

const dir = mkdtempSync(join(tmpdir(), 'kbx-strategy-unit-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

t.test('loadStrategy: TS and JS files, named or default exports; bad files are usage errors', async (t) => {
  const ts = await loadStrategy(file('my-algo.ts', 'import type { StrategyContext } from "@kbx/fix"\nexport function onLogon(ctx: StrategyContext): void { ctx.stop() }\n'))
  t.equal(ts.name, 'my-algo', 'named after its file')
  t.type(ts.onLogon, 'function')
  const js = await loadStrategy(file('obj.mjs', 'export default { name: "obj", n: 0, onTimer() { this.n++; return this.n } }\n'))
  t.equal(js.name, 'obj')
  t.equal((js.onTimer as unknown as () => number)(), 1, 'a default object keeps its `this`')
  const usage = async (path: string, pattern: RegExp) => {
    const err = await loadStrategy(path).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof UsageError && err.exitCode === 2, `${path}: a usage error`)
    t.match((err as Error).message, pattern)
  }
  await usage(join(dir, 'missing.ts'), /no such file/)
  await usage(dir, /no such file/)
  await usage(file('none.mjs', 'export const onLogon = 1\n'), /onLogon is not a function/)
  await usage(file('empty.mjs', 'export default { other() {} }\n'), /exports none of onLogon/)
  await usage(file('broken.ts', 'export function onLogon( {\n'), /cannot be loaded/)
})

t.test('--strategy-param and the option checks', async (t) => {
  t.same(collectStrategyParam('b=2=3', collectStrategyParam('a=1', undefined)), { a: '1', b: '2=3' })
  t.throws(() => collectStrategyParam('=1', undefined), UsageError)
  const base = { cancelRatio: 0, replaceRatio: 0, statusRatio: 0 }
  t.throws(() => checkOrderOptions({ ...base, cancelRatio: 0.5, strategy: 'x.ts' }), /do not apply with --strategy/)
  t.throws(() => checkOrderOptions({ ...base, strategyParam: { a: '1' } }), /only with --strategy/)
  t.doesNotThrow(() => checkOrderOptions({ ...base, strategy: 'x.ts', strategyParam: { a: '1' } }))
})

t.test('FixClient options: fix-tcp\'s table, defaults filled in, bad values usage errors', async (t) => {
  const o = parseFixClientOptions({ iface: 'fix0', connect: '10.0.3.2:9999', io: 'socket', reflex: false, maxMsgRate: 100, strategyParam: { rate: '5' }, logonField: [[1, 'ACC']] })
  t.same(o.connect, { ip: '10.0.3.2', port: 9999 })
  t.equal(o.io, 'socket')
  t.equal(o.reflex, false)
  t.equal(o.maxMsgRate, 100)
  t.same(o.strategyParam, { rate: '5' })
  t.same(o.logonField, [[1, 'ACC']])
  t.equal(o.sender, 'CLIENT1', 'defaults as on the command line')
  t.equal(o.reconnect, true)
  t.same(parseFixClientOptions({ connect: { ip: '10.0.0.1', port: 1 } }).connect, { ip: '10.0.0.1', port: 1 })
  t.throws(() => parseFixClientOptions({ io: 'carrier-pigeon' }), UsageError)
  t.throws(() => parseFixClientOptions({ maxMsgRate: 0 }), UsageError)
  t.throws(() => parseFixClientOptions({ nonsense: 1 } as never), /unknown option "nonsense"/)
})

/** A session logged on (Logon answered), its flow, and a runner for `strategy`; reports go in through receive(). */
function harness(strategy: Strategy) {
  const out: Buffer[] = []
  const lines: Record<string, any>[] = []
  const store = new MemorySeqStore()
  let runner: StrategyRunner | undefined = undefined
  const session = new FixSession({ role: 'initiator', senderCompId: 'CLIENT1', targetCompId: 'EXCH', store, send: (b) => void out.push(Buffer.from(b)), onApp: (msg) => runner!.onApp(msg, flow.onApp(msg)) })
  const flow = new OrderFlow(session, { symbol: 'KBX', side: '1', qty: 100, price: 100_25_000_000 })
  const json = new JsonLines({ tool: 'fix-tcp', out: { write: (s: string) => void lines.push(JSON.parse(s)) } })
  let reflex: unknown = 'unset'
  const host = { flow, json, log: createLogger({ name: 'test', level: 'silent' }), inFlight: () => flow.outstanding + flow.lifecycle.awaiting, useReflex: (spec: unknown) => ((reflex = spec), spec !== undefined) }
  runner = new StrategyRunner({ name: 'test', ...strategy }, host, { orders: 3, rate: undefined, symbol: 'KBX', side: 'buy', qty: 100, price: 100.25 }, { k: 'v' }, { symbol: 'KBX', side: '1', qty: 100, price: 100_25_000_000 })
  let peerSeq = 1
  const receive = (fields: [number, string | number][], msgType = '8') => session.receive(buildMessage([[35, msgType], [49, 'EXCH'], [56, 'CLIENT1'], [34, peerSeq++], [52, '20261203-10:00:00.000'], ...fields]))
  session.start()
  receive([[98, 0], [108, 30]], 'A')
  runner.logon()
  return { runner, flow, session, out, lines, receive, reflex: () => reflex }
}

t.test('StrategyRunner: orders with their terms in the book, fills, reports, replace, the reflex, a throw', async (t) => {
  const reports: ExecutionReport[] = []
  let ctxSeen: StrategyContext | undefined
  let throwOn = ''
  const h = harness({
    onLogon(ctx) {
      ctxSeen = ctx
    },
    onExecutionReport(_ctx, r) {
      reports.push(r)
      if (r.execType === throwOn) throw new Error('boom')
    },
  })
  const ctx = ctxSeen!
  t.same(ctx.params, { k: 'v' })
  const a = ctx.newOrder({ side: 'sell', qty: 7, price: '101.5' })!
  const b = ctx.newOrder({ price: 99.99 })!
  t.match(h.out.at(-2)!.toString('latin1'), /\x0154=2\x01.*\x0138=7\x0140=2\x0144=101.5\x01/, 'the NewOrderSingle carries the terms')
  t.throws(() => ctx.newOrder({ qty: 0 }), RangeError, 'a bad quantity is the strategy\'s error')
  t.equal(ctx.inFlight, 2)
  t.same(ctx.orders().map((o) => [o.clOrdId, o.state, o.side, o.qty, o.price]), [[a, 'pending-new', 'sell', 7, 101.5], [b, 'pending-new', 'buy', 100, 99.99]])
  h.receive([[11, a], [37, 'O1'], [17, 'E1'], [150, '0'], [39, '0'], [55, 'KBX'], [54, '2'], [14, 0], [151, 7]])
  h.receive([[11, a], [37, 'O1'], [17, 'E2'], [150, 'F'], [39, '1'], [55, 'KBX'], [54, '2'], [32, 3], [31, '101.5'], [14, 3], [151, 4]])
  t.same(ctx.order(a), { clOrdId: a, state: 'partially-filled', symbol: 'KBX', side: 'sell', qty: 7, price: 101.5, filled: 3 }, 'the book follows the fill')
  const fill = reports.at(-1)!
  t.same([fill.clOrdId, fill.execType, fill.state, fill.from, fill.lastQty, fill.lastPx, fill.cumQty, fill.leavesQty, fill.side, fill.orderId], [a, 'F', 'partially-filled', 'new', 3, 101.5, 3, 4, 'sell', 'O1'])
  const r = ctx.replace(a, { price: 102 })!
  t.ok(r > b, 'a replace takes a new ClOrdID')
  t.equal(ctx.replace(a, { price: 103 }), undefined, 'not twice while the first is out')
  h.receive([[11, r], [41, a], [37, 'O1'], [17, 'E3'], [150, '5'], [39, '1'], [55, 'KBX'], [54, '2'], [14, 3]])
  t.equal(ctx.order(a), undefined, 'the original is final (replaced)')
  t.same(ctx.order(r), { clOrdId: r, state: 'partially-filled', symbol: 'KBX', side: 'sell', qty: 7, price: 102, filled: 3 }, 'the replacement keeps the fill and has the new price')
  t.equal(ctx.cancelAll(), 1, 'only the order resting can be canceled (the other waits for its ack)')

  t.equal(ctx.reflex({ price: 1, count: 1 }), true)
  t.same(h.reflex(), { symbol: 'KBX', side: '1', qty: 100, price: 100_000_000 }, 'the reflex gets the terms')
  t.equal(h.runner.reflexArmable, true)
  h.runner.reflexSent({ seq: 99, clOrdId: 42, sentNs: 0n, triggerSeq: 5, message: Buffer.alloc(0), sendingTime: Buffer.alloc(0), body: Buffer.alloc(0) })
  t.equal(ctx.reflexRemaining, 0)
  t.equal(h.reflex(), undefined, 'its count spent, the reflex is off')
  h.receive([[11, b], [37, 'O2'], [17, 'E4'], [150, '0'], [39, '0'], [55, 'KBX'], [54, '1']])
  t.equal(reports.at(-1)!.reflexClOrdId, 42, 'the report the reflex answered says with which order')

  ctx.emit({ x: 1 })
  ctx.emit('signal', { y: 2 })
  t.same(h.lines.map((l) => [l.event, l.data]), [['strategy', { x: 1 }], ['signal', { y: 2 }]])
  t.throws(() => ctx.emit('end', {}), /fix-tcp's own events/)

  const rejects: unknown[] = []
  h.runner.strategy.onReject = (_ctx, reject) => void rejects.push(reject)
  const c = ctx.cancel(b) // b is new now
  h.receive([[11, c!], [41, b], [37, 'O2'], [39, '0'], [434, '1'], [102, '0'], [58, 'too late']], '9')
  h.receive([[45, 9], [372, 'H'], [380, '3'], [58, 'not here']], 'j')
  t.same(rejects, [
    { kind: 'cancel', clOrdId: c, origClOrdId: b, ordStatus: '0', responseTo: 'cancel', reason: '0', text: 'too late' },
    { kind: 'business', refId: undefined, refMsgType: 'H', reason: '3', text: 'not here' },
  ], 'OrderCancelReject and BusinessMessageReject reach onReject')
  t.equal(h.flow.lifecycle.counts().cancelRejects, 1)

  throwOn = '4'
  h.receive([[11, r + 1], [41, r], [37, 'O1'], [17, 'E5'], [150, '4'], [39, '4'], [55, 'KBX'], [54, '2']])
  t.equal(h.runner.failure?.handler, 'onExecutionReport')
  t.equal(h.runner.stopping, true, 'a throw stops the strategy')
  t.same(h.lines.at(-1), { event: 'strategy-error', tool: 'fix-tcp', ts: h.lines.at(-1)!.ts, data: { strategy: 'test', handler: 'onExecutionReport', message: 'boom' } })
  const calls = h.runner.counters.handlerCalls
  h.receive([[11, b], [37, 'O2'], [17, 'E6'], [150, '4'], [39, '4'], [55, 'KBX'], [54, '1']])
  t.equal(h.runner.counters.handlerCalls, calls, 'no handler called after the throw')
  t.equal(ctx.newOrder(), undefined, 'nor an order sent')
  t.equal(h.flow.lifecycle.counts().canceled, 2, 'the lifecycle still followed the reports')
})
