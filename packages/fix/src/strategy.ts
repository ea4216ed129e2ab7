// The strategy API: what a trading strategy run by `fix-tcp --strategy FILE` (or attached to a FixClient)
// exports, and the context it gets to send orders, read its own book and emit JSON events. Loading a
// strategy file (JS or TS) and checking its shape happen here, before anything is attached.
import { existsSync, statSync } from 'node:fs'
import { basename, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { UsageError } from '@kbx/errors'
import type { Logger } from '@kbx/stats'
import type { LifecycleCounts, OrderState } from './lifecycle.js'

export type Side = 'buy' | 'sell'

/** An order's terms; what a call leaves out comes from --symbol, --side, --qty and --price. */
export interface OrderTerms {
  symbol?: string
  side?: Side
  qty?: number
  /** A decimal limit price (number or text, at most 8 decimals). */
  price?: number | string
}

/** One of the strategy's own live (not yet final) orders. */
export interface BookOrder {
  clOrdId: number
  state: OrderState
  symbol: string
  side: Side
  qty: number
  price: number
  /** CumQty(14) as last reported (0 before any fill). */
  filled: number
}

export interface ExecutionReport {
  clOrdId: number
  /** OrigClOrdID(41) of a cancel or replace report, else undefined. */
  origClOrdId: number | undefined
  execType: string
  ordStatus: string
  /** The order this report moved (for the answer to a cancel: the canceled order's ClOrdID), else undefined. */
  order: number | undefined
  /** That order's state now (final ones included), or the report's order's state when nothing moved. */
  state: OrderState | undefined
  /** The state it left. */
  from: OrderState | undefined
  orderId: string | undefined
  symbol: string | undefined
  side: Side | undefined
  lastQty: number
  lastPx: number
  cumQty: number
  leavesQty: number
  text: string | undefined
  /** The native reflex already answered this report with this new order (ctx.reflex). */
  reflexClOrdId: number | undefined
}

/** A session Reject(3), OrderCancelReject(9) or BusinessMessageReject(j). */
export type Reject =
  | { kind: 'session'; refSeqNum: number; text: string | undefined }
  | { kind: 'cancel'; clOrdId: number; origClOrdId: number; ordStatus: string | undefined; responseTo: 'cancel' | 'replace'; reason: string | undefined; text: string | undefined }
  | { kind: 'business'; refId: string | undefined; refMsgType: string | undefined; reason: string | undefined; text: string | undefined }

export interface LogoutInfo {
  /** 'logout' after a Logout exchange, else why the connection or session ended. */
  reason: string
  /** The run reconnects and logs on again (onLogon is called again). */
  reconnecting: boolean
}

/** The native reflex's answer to the ExecutionReport of the one order in flight: a NewOrderSingle with these terms. */
export interface ReflexPlan extends OrderTerms {
  /** At most this many orders from the reflex (default: no limit); ctx.reflexRemaining counts down. */
  count?: number
}

/** What --orders, --rate, --symbol, --side, --qty and --price said (a strategy decides what they mean). */
export interface StrategyConfig {
  orders: number | undefined
  rate: number | undefined
  symbol: string
  side: Side
  qty: number
  price: number
}

export interface StrategyContext {
  readonly config: StrategyConfig
  /** --strategy-param KEY=VALUE pairs. */
  readonly params: Readonly<Record<string, string>>
  /** Logs on stderr (pino), tagged with the strategy's name. */
  readonly log: Logger
  /** The session is logged on: orders can be sent. */
  readonly loggedOn: boolean
  /** A NewOrderSingle (limit, day); its ClOrdID, or undefined when the throttle refused it or the run is stopping. */
  newOrder(terms?: OrderTerms): number | undefined
  /** OrderCancelRequest for a resting order; the request's ClOrdID, or undefined when it cannot be canceled now. */
  cancel(clOrdId: number): number | undefined
  /** OrderCancelReplaceRequest (terms left out stay the order's); the replacement's ClOrdID, or undefined. */
  replace(clOrdId: number, terms: Omit<OrderTerms, 'symbol' | 'side'>): number | undefined
  /** OrderStatusRequest (answered by an ExecutionReport); false when not sent. */
  status(clOrdId: number): boolean
  /** Cancels every resting order without a request out; how many cancels went. */
  cancelAll(): number
  /** One of its live orders, or undefined (final or never ours). */
  order(clOrdId: number): BookOrder | undefined
  /** Its live orders. */
  orders(): BookOrder[]
  /** Every ClOrdID's state so far (the end event's lifecycle). */
  counts(): LifecycleCounts
  /** Messages of ours waiting for an answer: orders without a first report, cancels and replaces (those the throttle holds included). */
  readonly inFlight: number
  /** onTimer every intervalMs from now (0: no timer). */
  setTimer(intervalMs: number): void
  /**
   * The native reflex answers the ExecutionReport of the one order in flight with this NewOrderSingle, in C, in the
   * step that received it (--io xdp; not under --max-msg-rate or --no-reflex). null: off. True when it will.
   */
  reflex(plan: ReflexPlan | null): boolean
  /** Orders the reflex may still send (Infinity: no count; 0 when off). */
  readonly reflexRemaining: number
  /** A JSON line on stdout: {"event":"strategy",…,"data":data}, or under its own event name. */
  emit(data: Record<string, unknown>): void
  emit(event: string, data: Record<string, unknown>): void
  /** Ends the run: no new orders; Logout once nothing is in flight (or after --order-timeout). */
  stop(reason?: string): void
}

/**
 * A strategy: any of these handlers. They run synchronously in the session's step (a returned promise's rejection
 * counts as a throw); a handler that throws ends the run with an error after a clean Logout.
 */
export interface Strategy {
  /** Name in logs and events (default: the file's name). */
  name?: string
  onLogon?(ctx: StrategyContext): void
  onExecutionReport?(ctx: StrategyContext, report: ExecutionReport): void
  onReject?(ctx: StrategyContext, reject: Reject): void
  onTimer?(ctx: StrategyContext): void
  onLogout?(ctx: StrategyContext, info: LogoutInfo): void
}

export const STRATEGY_HANDLERS = ['onLogon', 'onExecutionReport', 'onReject', 'onTimer', 'onLogout'] as const

/** Event names a strategy may not emit under (the tool's own). */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set(['start', 'interval', 'end', 'error', 'logon', 'logout', 'disconnect', 'reconnect', 'reconnect-failed', 'strategy-error', 'resend-request-sent', 'resend', 'gap-fill', 'sequence-reset', 'test-request', 'reject', 'frame-error', 'seq-too-low', 'timeout'])

/** The handlers of a module or object: named exports, or a default export holding them. Usage error when none. */
export function strategyOf(module: Record<string, unknown>, where: string): Strategy {
  const candidates = [module, module['default']].filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null)
  for (const c of candidates) {
    const handlers = STRATEGY_HANDLERS.filter((h) => c[h] !== undefined)
    if (handlers.length === 0) continue
    // a fresh object (a module namespace cannot be added to); handlers keep `this` as their own object
    const strategy: Record<string, unknown> = typeof c['name'] === 'string' ? { name: c['name'] } : {}
    for (const h of handlers) {
      const fn = c[h]
      if (typeof fn !== 'function') throw new UsageError(`${where}: ${h} is not a function`, { op: 'load strategy' })
      strategy[h] = fn.bind(c)
    }
    return strategy as Strategy
  }
  throw new UsageError(`${where}: exports none of ${STRATEGY_HANDLERS.join(', ')}`, { op: 'load strategy', hint: 'export the handlers by name (export function onLogon(ctx) {…}) or as the default export object' })
}

const TS_FILE = /\.[cm]?tsx?$/

/** Imports a strategy file (.js/.mjs, or .ts through tsx) and returns its handlers; usage errors for a bad file. */
export async function loadStrategy(file: string): Promise<Strategy & { name: string }> {
  const path = resolve(file)
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`--strategy ${file}: no such file`, { op: 'load strategy' })
  let module: Record<string, unknown>
  try {
    if (TS_FILE.test(path)) {
      const { tsImport } = await import('tsx/esm/api')
      module = (await tsImport(pathToFileURL(path).href, import.meta.url)) as Record<string, unknown>
    } else {
      module = (await import(pathToFileURL(path).href)) as Record<string, unknown>
    }
  } catch (err) {
    throw new UsageError(`--strategy ${file}: cannot be loaded: ${err instanceof Error ? err.message : String(err)}`, { op: 'load strategy', cause: err })
  }
  const strategy = strategyOf(module, `--strategy ${file}`)
  return { ...strategy, name: strategy.name ?? basename(path).replace(/\.[cm]?[jt]sx?$/, '') }
}

/** --strategy-param KEY=VALUE (repeatable) into an object. */
export function collectStrategyParam(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const at = value.indexOf('=')
  if (at <= 0) throw new UsageError(`--strategy-param: expected KEY=VALUE, got ${JSON.stringify(value)}`)
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) }
}
