// `fix-tcp`: one FIX initiator session, orders out, ExecutionReports matched, JSON stats. Its options and the
// checks made before anything is opened; the run itself is fix-tcp-run.ts.
import { Option, XDP_MODES, addCommonOptions, parseChoice, parseIpPortOption, parseIntOption, parseInterfaceName, parseScaledInt, parseSeconds, requirePrivileges } from '@kbx/cli'
import type { Command, IpPort, PrivilegeOptions, ToolContext, XdpMode } from '@kbx/cli'
import { NetError, UsageError } from '@kbx/errors'
import { interfaceInfo } from '@kbx/net'
import { parsePrice } from './codec.js'
import { DEFAULT_STORE_DIR, FixTcpRun, RECONNECT_CAP_S } from './fix-tcp-run.js'
import type { FixTcpRunSetup } from './fix-tcp-run.js'
import type { IoKind } from './transport.js'
import { FIX_VERSIONS, beginStringOf, collectLogonField, headerFields, logonFields, resolveCredentials } from './logon.js'
import type { FixField, FixVersion } from './logon.js'

export const TOOL = 'fix-tcp'
export { DEFAULT_STORE_DIR, RECONNECT_CAP_S, RESEND_CAPACITY } from './fix-tcp-run.js'

export interface FixTcpOptions {
  iface: string
  connect: IpPort
  sender: string
  target: string
  orders?: number
  rate?: number
  /** Seconds; 0 = until the orders are done or stopped. */
  duration: number
  /** Seconds between `interval` events (> 0). */
  interval: number
  io: IoKind
  fixVersion: FixVersion
  /** File with username=… and password=… lines (mode 0600 or stricter). */
  credentials?: string
  /** --logon-field TAG=VALUE, repeatable. */
  logonField?: FixField[]
  senderSubId?: string
  targetSubId?: string
  senderLocationId?: string
  /** A Logon the gateway refuses ends the run (exit 1) unless given: then it is retried with the backoff. */
  retryRefusedLogon?: boolean
  heartbeat: number
  reset?: boolean
  store?: string
  symbol: string
  side: 'buy' | 'sell'
  qty: number
  price: string
  linger: number
  testGapAt?: number
  testDropSegment?: number
  mode: XdpMode
  /** Deprecated alias of --mode (hidden). */
  xdpMode?: XdpMode
  queue: number
  busyPoll?: boolean
  /** Default true (--no-reflex: false): one order at a time over --io xdp, the native reflex sends the next order. */
  reflex: boolean
  /** Default true (--no-reconnect: false): a lost connection is made again and the session logs on again. */
  reconnect: boolean
  /** Seconds before the first reconnection attempt; doubled per failed attempt up to RECONNECT_CAP_S. */
  reconnectInterval: number
  /** Seconds of logged-on time an order may wait for its first ExecutionReport before it counts as unknown. */
  orderTimeout: number
}

export function buildFixTcp(program: Command): void {
  program
    .option('--iface <name>', 'interface towards the gateway (source address; AF_XDP interface for --io xdp)', (v) => parseInterfaceName(v, '--iface'), 'fix0')
    .option('--connect <ip:port>', 'FIX gateway (acceptor) address', parseIpPortOption('--connect'), { ip: '10.0.3.2', port: 9878 })
    .option('--sender <id>', 'SenderCompID (49)', 'CLIENT1')
    .option('--target <id>', 'TargetCompID (56)', 'EXCH')
    .option('--orders <n>', 'NewOrderSingles to send (alone: one at a time, each after the previous ack)', parseScaledInt('--orders', { min: 0 }))
    .option('--rate <r>', 'orders per second (paced, without waiting for acks)', parseScaledInt('--rate', { min: 1 }))
    .addOption(new Option('--io <kind>', 'transport: xdp (userspace TCP on AF_XDP) or socket (kernel TCP)').choices(['xdp', 'socket']).default('xdp'))
    .option('--fix-version <v>', 'FIX.4.4, FIX.4.2, or 5.0SP2 (FIX 5.0 SP2 over FIXT.1.1: DefaultApplVerID(1137)=9 on Logon)', parseChoice('--fix-version', FIX_VERSIONS), '4.4')
    .option('--credentials <file>', 'Username (553) and Password (554) for the Logon from FILE (lines username=… and password=…; mode 0600: not readable by group or others). Or KBX_FIX_USERNAME / KBX_FIX_PASSWORD in the environment. Never on the command line')
    .option('--logon-field <tag=value>', 'an extra field of the Logon (repeatable, in order; RawData 96 gets its RawDataLength 95 in front)', collectLogonField)
    .option('--sender-sub-id <id>', 'SenderSubID (50) in the header of every message')
    .option('--target-sub-id <id>', 'TargetSubID (57) in the header of every message')
    .option('--sender-location-id <id>', 'SenderLocationID (142) in the header of every message')
    .option('--retry-refused-logon', 'a Logon the gateway refuses (Logout, or the connection closed before its Logon) is retried with the reconnection backoff instead of ending the run (exit 1)')
    .option('--heartbeat <s>', 'HeartBtInt (108) proposed on Logon, seconds', parseIntOption('--heartbeat', { min: 1, max: 3600 }), 30)
    .option('--reset', 'send ResetSeqNumFlag(141)=Y on the first Logon: both sides start again from 1 (never on a logon after a reconnection)')
    .option('--store <path>', `sequence-number store (default ${DEFAULT_STORE_DIR}/SENDER-TARGET.json)`)
    .option('--symbol <s>', 'Symbol (55)', 'KBX')
    .addOption(new Option('--side <side>', 'Side (54)').choices(['buy', 'sell']).default('buy'))
    .option('--qty <n>', 'OrderQty (38)', parseIntOption('--qty', { min: 1 }), 100)
    .option('--price <p>', 'limit Price (44)', '100.25')
    .option('--linger <s>', 'stay logged on (idle, heartbeats only) this long after the last order, before Logout', parseSeconds('--linger', { min: 0 }), 0)
    .option('--busy-poll', '--io xdp: spin on the AF_XDP RX ring instead of sleeping in poll() when idle (lowest latency; keeps one core at 100%)')
    .option('--no-reflex', '--io xdp, one order at a time: send each next order from the TypeScript session instead of the native reflex (C answers the ExecutionReport in the step that received it)')
    .option('--reconnect-interval <s>', `seconds before reconnecting after the connection or the session is lost (doubled per failed attempt, up to ${RECONNECT_CAP_S} s)`, parseSeconds('--reconnect-interval', { min: 0.01 }), 1)
    .option('--no-reconnect', 'exit with an error (exit 1) instead of reconnecting when the connection or the session is lost')
    .option('--order-timeout <s>', 'seconds of logged-on time an order may wait for its first ExecutionReport before it counts as unknown', parseSeconds('--order-timeout', { min: 0.1 }), 30)
    .addOption(new Option('--test-drop-segment <n>', 'test hook (--io xdp): drop our Nth data segment once').argParser(parseIntOption('--test-drop-segment', { min: 1 })).hideHelp())
    .addOption(new Option('--test-gap-at <seq>', 'test hook: skip this outgoing MsgSeqNum once').argParser(parseIntOption('--test-gap-at', { min: 1 })).hideHelp())
  // --mode and --queue apply to --io xdp; --duration ends with a clean Logout (orders in flight answered first)
  addCommonOptions(program, ['mode', 'queue', 'duration', 'interval'])
  program.addOption(new Option('--xdp-mode <mode>', 'deprecated: use --mode').argParser(parseChoice('--xdp-mode', XDP_MODES)).hideHelp())
}

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

export async function runFixTcp(ctx: ToolContext<FixTcpOptions>): Promise<void> {
  const opts = ctx.opts
  const price = parsePrice(Buffer.from(opts.price), 0, Buffer.byteLength(opts.price))
  if (!(price > 0)) throw new UsageError(`--price: expected a positive decimal price with at most 8 decimals, got ${JSON.stringify(opts.price)}`)
  if (opts.busyPoll === true && opts.io !== 'xdp') throw new UsageError('--busy-poll: only with --io xdp (the kernel socket is event-driven)')
  const mode = resolveXdpMode(opts, (msg) => ctx.log.warn(msg))
  const logon = resolveLogon(opts, process.env)
  requireFixTcpPrivileges(opts.io)
  const info = interfaceInfo(opts.iface)
  const localAddress = info.ipv4[0]
  if (localAddress === undefined) throw new NetError(`interface ${opts.iface} has no IPv4 address`, { op: 'interface address', hint: `ip addr add … dev ${opts.iface}` })
  const setup: FixTcpRunSetup = { opts, mode, price, localAddress, logon }
  const run = new FixTcpRun(ctx, setup)
  await run.open()
  await run.run()
}
