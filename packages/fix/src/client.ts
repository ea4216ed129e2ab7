// `fix-tcp`: one FIX initiator session, orders out, ExecutionReports matched, JSON stats. Its options and the
// checks made before anything is opened; the run itself is fix-tcp-run.ts.
import { XDP_MODES, choiceOption, commonOptions, flagOption, intOption, latencyFileOptions, optionTable, parseInterfaceName, parseIpPortOption, requirePrivileges, scaledIntOption, secondsOption, stringOption, valueOption } from '@kbx/cli'
import type { OptionsOf, PrivilegeOptions, ToolContext, XdpMode } from '@kbx/cli'
import { NetError, UsageError } from '@kbx/errors'
import { interfaceInfo } from '@kbx/net'
import { parsePrice } from './codec.js'
import { DEFAULT_STORE_DIR, FixTcpRun, RECONNECT_CAP_S } from './fix-tcp-run.js'
import type { FixTcpRunSetup } from './fix-tcp-run.js'
import type { IoKind } from './transport.js'
import { FIX_VERSIONS, beginStringOf, collectLogonField, headerFields, logonFields, resolveCredentials } from './logon.js'
import type { FixField } from './logon.js'
import { collectStrategyParam, loadStrategy } from './strategy.js'
import type { Strategy } from './strategy.js'

export const TOOL = 'fix-tcp'
export { DEFAULT_STORE_DIR, RECONNECT_CAP_S, RESEND_CAPACITY } from './fix-tcp-run.js'

/** fix-tcp's options. --mode and --queue apply to --io xdp; --duration ends with a clean Logout (orders in flight answered first). */
export const fixTcpOptions = optionTable({
  iface: valueOption('--iface <name>', 'interface towards the gateway (source address; AF_XDP interface for --io xdp)', (v: string) => parseInterfaceName(v, '--iface'), { default: 'fix0' }),
  connect: valueOption('--connect <ip:port>', 'FIX gateway (acceptor) address', parseIpPortOption('--connect'), { default: { ip: '10.0.3.2', port: 9878 } }),
  sender: stringOption('--sender <id>', 'SenderCompID (49)', { default: 'CLIENT1' }),
  target: stringOption('--target <id>', 'TargetCompID (56)', { default: 'EXCH' }),
  orders: scaledIntOption('--orders <n>', 'NewOrderSingles to send (alone: one at a time, each after the previous ack)', { min: 0 }),
  rate: scaledIntOption('--rate <r>', 'orders per second (paced, without waiting for acks)', { min: 1 }),
  io: choiceOption('--io <kind>', 'transport: xdp (userspace TCP on AF_XDP) or socket (kernel TCP)', ['xdp', 'socket'], { default: 'xdp', listed: true }),
  fixVersion: choiceOption('--fix-version <v>', 'FIX.4.4, FIX.4.2, or 5.0SP2 (FIX 5.0 SP2 over FIXT.1.1: DefaultApplVerID(1137)=9 on Logon)', FIX_VERSIONS, { default: '4.4' }),
  /** File with username=… and password=… lines (mode 0600 or stricter). */
  credentials: stringOption('--credentials <file>', 'Username (553) and Password (554) for the Logon from FILE (lines username=… and password=…; mode 0600: not readable by group or others). Or KBX_FIX_USERNAME / KBX_FIX_PASSWORD in the environment. Never on the command line'),
  logonField: valueOption('--logon-field <tag=value>', 'an extra field of the Logon (repeatable, in order; RawData 96 gets its RawDataLength 95 in front)', collectLogonField),
  senderSubId: stringOption('--sender-sub-id <id>', 'SenderSubID (50) in the header of every message'),
  targetSubId: stringOption('--target-sub-id <id>', 'TargetSubID (57) in the header of every message'),
  senderLocationId: stringOption('--sender-location-id <id>', 'SenderLocationID (142) in the header of every message'),
  /** A Logon the gateway refuses ends the run (exit 1) unless given: then it is retried with the backoff. */
  retryRefusedLogon: flagOption('--retry-refused-logon', 'a Logon the gateway refuses (Logout, or the connection closed before its Logon) is retried with the reconnection backoff instead of ending the run (exit 1)'),
  heartbeat: intOption('--heartbeat <s>', 'HeartBtInt (108) proposed on Logon, seconds', { min: 1, max: 3600, default: 30 }),
  reset: flagOption('--reset', 'send ResetSeqNumFlag(141)=Y on the first Logon: both sides start again from 1 (never on a logon after a reconnection)'),
  store: stringOption('--store <path>', `sequence-number store (default ${DEFAULT_STORE_DIR}/SENDER-TARGET.json)`),
  symbol: stringOption('--symbol <s>', 'Symbol (55)', { default: 'KBX' }),
  side: choiceOption('--side <side>', 'Side (54)', ['buy', 'sell'], { default: 'buy', listed: true }),
  qty: intOption('--qty <n>', 'OrderQty (38)', { min: 1, default: 100 }),
  price: stringOption('--price <p>', 'limit Price (44)', { default: '100.25' }),
  linger: secondsOption('--linger <s>', 'stay logged on (idle, heartbeats only) this long after the last order, before Logout', { min: 0, default: 0 }),
  tcpKeepalive: intOption('--tcp-keepalive <s>', '--io xdp: TCP keep-alive probe after this many seconds without a segment from the gateway (5 unanswered: the connection is lost); off by default', { min: 1, max: 86400 }),
  busyPoll: flagOption('--busy-poll', 'spin instead of sleeping when idle: on the AF_XDP RX ring (--io xdp) or in poll() on the socket (--io socket); lowest latency, keeps one core at 100%'),
  /** Default true (--no-reflex: false): one order at a time over --io xdp, the native reflex sends the next order. */
  reflex: flagOption('--no-reflex', '--io xdp, one order at a time: send each next order from the TypeScript session instead of the native reflex (C answers the ExecutionReport in the step that received it)'),
  /** Seconds before the first reconnection attempt; doubled per failed attempt up to RECONNECT_CAP_S. */
  reconnectInterval: secondsOption('--reconnect-interval <s>', `seconds before reconnecting after the connection or the session is lost (doubled per failed attempt, up to ${RECONNECT_CAP_S} s)`, { min: 0.01, default: 1 }),
  /** Default true (--no-reconnect: false): a lost connection is made again and the session logs on again. */
  reconnect: flagOption('--no-reconnect', 'exit with an error (exit 1) instead of reconnecting when the connection or the session is lost'),
  /** Seconds of logged-on time an order may wait for its first ExecutionReport before it counts as unknown. */
  orderTimeout: secondsOption('--order-timeout <s>', 'seconds of logged-on time an order may wait for its first ExecutionReport before it counts as unknown', { min: 0.1, default: 30 }),
  cancelRatio: valueOption('--cancel-ratio <p>', 'share (0–1) of the orders that become new (resting) to cancel with an OrderCancelRequest', (v: string) => parseRatio(v, '--cancel-ratio'), { default: 0 }),
  replaceRatio: valueOption('--replace-ratio <p>', 'share (0–1) of the orders that become new to replace (OrderCancelReplaceRequest, price +0.01); the replacement rests and meets the ratios again', (v: string) => parseRatio(v, '--replace-ratio'), { default: 0 }),
  statusRatio: valueOption('--status-ratio <p>', 'share (0–1) of the orders that become new to ask about with an OrderStatusRequest', (v: string) => parseRatio(v, '--status-ratio'), { default: 0 }),
  maxMsgRate: scaledIntOption('--max-msg-rate <n>', 'at most N application messages in any 1 s window of this session (admin messages exempt unless --throttle-admin); turns the native reflex off', { min: 1 }),
  throttleMode: choiceOption('--throttle-mode <mode>', 'over --max-msg-rate: queue (the default: held, sent when the window allows; at most 4096 held, then rejected) or reject (not sent, counted)', ['queue', 'reject'], { listed: true }),
  throttleAdmin: flagOption('--throttle-admin', 'admin messages (Heartbeat, TestRequest, resends, …) count in the --max-msg-rate window; they are never held, application messages give way'),
  strategy: stringOption('--strategy <file>', 'run the trading strategy in FILE (.js/.mjs, or .ts): it exports onLogon, onExecutionReport, onReject, onTimer and onLogout and sends its own orders (--orders, --rate, --symbol, --side, --qty and --price are its to read); see packages/fix/README.md'),
  strategyParam: valueOption('--strategy-param <key=value>', 'a parameter for the strategy (ctx.params.KEY; repeatable)', collectStrategyParam),
  testDropSegment: intOption('--test-drop-segment <n>', 'test hook (--io xdp): drop our Nth data segment once', { min: 1, hidden: true }),
  testGapAt: intOption('--test-gap-at <seq>', 'test hook: skip this outgoing MsgSeqNum once', { min: 1, hidden: true }),
  ...commonOptions,
  ...latencyFileOptions,
  /** Deprecated alias of --mode (hidden). */
  xdpMode: choiceOption('--xdp-mode <mode>', 'deprecated: use --mode', XDP_MODES, { hidden: true }),
})
export type FixTcpOptions = OptionsOf<typeof fixTcpOptions>

/** The XDP attach mode: --mode, or the deprecated --xdp-mode (a warning; both and different: a usage error). */
export function resolveXdpMode(opts: Pick<FixTcpOptions, 'mode' | 'xdpMode'>, warn: (msg: string) => void): XdpMode {
  if (opts.xdpMode === undefined) return opts.mode
  if (opts.mode !== 'auto' && opts.mode !== opts.xdpMode) throw new UsageError(`--xdp-mode ${opts.xdpMode} contradicts --mode ${opts.mode}`, { hint: '--xdp-mode is a deprecated alias of --mode: give --mode alone' })
  warn('--xdp-mode is deprecated: use --mode')
  return opts.xdpMode
}

/** What the Logon and the header carry beyond the session's own fields (usage errors before anything opens). */
export interface LogonPlan {
  beginString: string
  logonFields: FixField[]
  headerFields: FixField[]
  /** For the start event: where credentials came from; never the credentials. */
  credentials: 'file' | 'environment' | 'none'
}

export function resolveLogon(opts: Pick<FixTcpOptions, 'fixVersion' | 'credentials' | 'logonField' | 'senderSubId' | 'targetSubId' | 'senderLocationId'>, env: NodeJS.ProcessEnv): LogonPlan {
  const credentials = resolveCredentials(opts.credentials, env)
  const given = credentials.username !== undefined || credentials.password !== undefined
  return {
    beginString: beginStringOf(opts.fixVersion),
    logonFields: logonFields({ version: opts.fixVersion, credentials, extra: opts.logonField ?? [] }),
    headerFields: headerFields({ ...(opts.senderSubId === undefined ? {} : { senderSubId: opts.senderSubId }), ...(opts.targetSubId === undefined ? {} : { targetSubId: opts.targetSubId }), ...(opts.senderLocationId === undefined ? {} : { senderLocationId: opts.senderLocationId }) }),
    credentials: !given ? 'none' : opts.credentials !== undefined ? 'file' : 'environment',
  }
}

/** --io xdp loads an XDP program and opens an AF_XDP socket: root (or the capabilities) first; --io socket needs none. */
export function requireFixTcpPrivileges(io: IoKind, options: PrivilegeOptions = {}): void {
  if (io === 'xdp') requirePrivileges(TOOL, options)
}

function parseRatio(value: string, flag: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`${flag}: expected a share from 0 to 1, got ${JSON.stringify(value)}`)
  return n
}

/** Option combinations the table cannot check alone (usage errors, before anything is opened). */
export function checkOrderOptions(opts: Pick<FixTcpOptions, 'cancelRatio' | 'replaceRatio' | 'statusRatio' | 'maxMsgRate' | 'throttleMode' | 'throttleAdmin' | 'strategy' | 'strategyParam'>): void {
  if (opts.strategy !== undefined && opts.cancelRatio + opts.replaceRatio + opts.statusRatio > 0) throw new UsageError('--cancel-ratio, --replace-ratio and --status-ratio do not apply with --strategy', { hint: 'the strategy sends its own cancels, replaces and status requests' })
  if (opts.strategy === undefined && opts.strategyParam !== undefined) throw new UsageError('--strategy-param applies only with --strategy FILE')
  if (opts.cancelRatio + opts.replaceRatio + opts.statusRatio > 1 + 1e-9) throw new UsageError(`--cancel-ratio, --replace-ratio and --status-ratio add up to ${opts.cancelRatio + opts.replaceRatio + opts.statusRatio}: at most 1`, { hint: 'each resting order gets at most one of the three requests' })
  if (opts.maxMsgRate === undefined && (opts.throttleAdmin === true || opts.throttleMode !== undefined)) throw new UsageError('--throttle-mode and --throttle-admin apply only with --max-msg-rate N')
}

export async function runFixTcp(ctx: ToolContext<FixTcpOptions>): Promise<void> {
  // a bad strategy file is a usage error before anything is attached
  const strategy = ctx.opts.strategy === undefined ? undefined : await loadStrategy(ctx.opts.strategy)
  const run = prepareFixTcp(ctx, strategy)
  await run.open()
  await run.run()
}

/** The checks made before anything is opened, and the run they allow (not opened yet). */
export function prepareFixTcp(ctx: ToolContext<FixTcpOptions>, strategy?: Strategy & { name: string }): FixTcpRun {
  const opts = ctx.opts
  checkOrderOptions(opts)
  const price = parsePrice(Buffer.from(opts.price), 0, Buffer.byteLength(opts.price))
  if (!(price > 0)) throw new UsageError(`--price: expected a positive decimal price with at most 8 decimals, got ${JSON.stringify(opts.price)}`)
  if (opts.tcpKeepalive !== undefined && opts.io !== 'xdp') throw new UsageError('--tcp-keepalive: only with --io xdp (the userspace TCP)')
  const mode = resolveXdpMode(opts, (msg) => ctx.log.warn(msg))
  const logon = resolveLogon(opts, process.env)
  requireFixTcpPrivileges(opts.io)
  const info = interfaceInfo(opts.iface)
  const localAddress = info.ipv4[0]
  if (localAddress === undefined) throw new NetError(`interface ${opts.iface} has no IPv4 address`, { op: 'interface address', hint: `ip addr add … dev ${opts.iface}` })
  const setup: FixTcpRunSetup = { opts, mode, price, localAddress, logon, ...(strategy === undefined ? {} : { strategy: { strategy, params: opts.strategyParam ?? {} } }) }
  return new FixTcpRun(ctx, setup)
}
