// FixClient: fix-tcp for programs that embed it. The same options as the command line (checked by the same
// table, usage errors alike), connect, attach a strategy, run to the end, close.
//   const client = new FixClient({ iface: 'fix0', connect: '10.0.3.2:9878', io: 'xdp', sender: 'CLIENT1', target: 'EXCH' })
//   await client.connect(); client.attach({ onLogon: (ctx) => … }); const end = await client.run(); await client.close()
import { Command } from '@kbx/cli'
import type { Cleanup, IpPort, ToolContext } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { JsonLines, TtyStatus, createLogger } from '@kbx/stats'
import type { EventData, JsonLinesOutput, LogLevel, Logger } from '@kbx/stats'
import { TOOL, fixTcpOptions, prepareFixTcp } from './client.js'
import type { FixTcpOptions } from './client.js'
import type { FixTcpRun } from './fix-tcp-run.js'
import { loadStrategy, strategyOf } from './strategy.js'
import type { Strategy } from './strategy.js'

type CliValue = string | number | boolean | IpPort | readonly (string | readonly [number, string])[] | Record<string, string> | undefined

/** fix-tcp's options by their option-table names (iface, connect, io, sender, target, maxMsgRate, …), values as on the command line or parsed. */
export type FixClientOptions = { [K in keyof FixTcpOptions]?: CliValue } & {
  /** Where the JSON lines go (default stdout; a stream or fd). */
  jsonOut?: JsonLinesOutput
  /** false: no JSON lines. */
  json?: boolean
  /** A logger of your own, or the level of the default (pino on stderr, 'info'). */
  log?: Logger
  logLevel?: LogLevel
}

const OWN_KEYS = new Set(['jsonOut', 'json', 'log', 'logLevel'])

/** The command-line arguments that say what `options` say. */
function argvOf(options: FixClientOptions): string[] {
  const argv: string[] = []
  const declarations = fixTcpOptions.declarations
  for (const [key, value] of Object.entries(options)) {
    if (OWN_KEYS.has(key) || value === undefined) continue
    const declaration = declarations[key]
    if (declaration === undefined) throw new UsageError(`FixClient: unknown option ${JSON.stringify(key)}`, { hint: `one of ${Object.keys(declarations).join(', ')}` })
    const flag = /--[\w-]+/.exec(declaration.flags)?.[0] ?? key
    if (!declaration.flags.includes('<')) {
      // a switch: --x when true; --no-x when false
      if (flag.startsWith('--no-') ? value === false : value === true) argv.push(flag)
      continue
    }
    const values = Array.isArray(value) ? value : typeof value === 'object' && value !== null && !('ip' in value) ? Object.entries(value) : [value]
    for (const v of values) argv.push(flag, textOf(v))
  }
  return argv
}

function textOf(v: unknown): string {
  if (Array.isArray(v)) return `${String(v[0])}=${String(v[1])}`
  if (typeof v === 'object' && v !== null && 'ip' in v && 'port' in v) return `${String(v.ip)}:${String(v.port)}`
  return String(v)
}

/** The options parsed by fix-tcp's own table: defaults filled in, bad values a UsageError. */
export function parseFixClientOptions(options: FixClientOptions): FixTcpOptions {
  const program = new Command(TOOL)
  program.exitOverride()
  let said = ''
  program.configureOutput({ writeOut: () => {}, writeErr: (s) => void (said += s) })
  fixTcpOptions.register(program)
  program.action(() => {})
  try {
    program.parse(argvOf(options), { from: 'user' })
  } catch (err) {
    if (err instanceof UsageError) throw err
    // commander's own errors (unknown choice, missing value) carry a code "commander.…"
    if (String((err as { code?: unknown }).code).startsWith('commander.')) throw new UsageError(`FixClient: ${said.trim() || (err as Error).message}`)
    throw err
  }
  return fixTcpOptions.values(program)
}

export class FixClient {
  readonly options: FixTcpOptions
  readonly log: Logger
  readonly json: JsonLines
  /** The `end` event's data, once run() is over. */
  end: EventData | undefined
  private readonly controller = new AbortController()
  private readonly cleanups: Cleanup[] = []
  private strategy: (Strategy & { name: string }) | undefined
  private run_: FixTcpRun | undefined
  private ran = false

  constructor(options: FixClientOptions = {}) {
    this.options = parseFixClientOptions(options)
    this.log = options.log ?? createLogger({ name: TOOL, level: options.logLevel ?? 'info' })
    this.json = new JsonLines({ tool: TOOL, enabled: options.json ?? true, ...(options.jsonOut === undefined ? {} : { out: options.jsonOut }) })
  }

  /** The strategy (handlers, or an object or module holding them), once, before run(). */
  attach(strategy: Strategy | Record<string, unknown>): this {
    if (this.strategy !== undefined || this.ran) throw new Error('FixClient.attach: one strategy, attached before run()')
    const handlers = strategyOf(strategy as Record<string, unknown>, 'FixClient.attach')
    this.strategy = { ...handlers, name: handlers.name ?? 'strategy' }
    this.run_?.attachStrategy(this.strategy, this.options.strategyParam ?? {})
    return this
  }

  /** Checks, then the connection (--io xdp: the XDP program and the AF_XDP socket too): the TCP connection is up. */
  async connect(): Promise<void> {
    if (this.run_ !== undefined) throw new Error('FixClient.connect: already connected')
    if (this.strategy === undefined && this.options.strategy !== undefined) this.strategy = await loadStrategy(this.options.strategy)
    const run = prepareFixTcp(this.context(), this.strategy)
    this.run_ = run
    await run.open()
  }

  /** Logon, the strategy's session, Logout: resolves with the `end` event's data (rejects like fix-tcp exits 1). */
  async run(): Promise<EventData> {
    const run = this.run_
    if (run === undefined) throw new Error('FixClient.run: connect() first')
    if (this.ran) throw new Error('FixClient.run: runs once')
    this.ran = true
    await run.run()
    return this.end ?? {}
  }

  /** Asks the run to end as on SIGINT: Logout, then run() resolves. */
  stop(): void {
    this.controller.abort(new Error('FixClient.stop'))
  }

  /** Releases everything connect() made (XDP program, socket, store), newest first. */
  async close(): Promise<void> {
    for (let fn = this.cleanups.pop(); fn !== undefined; fn = this.cleanups.pop()) await fn()
  }

  private context(): ToolContext<FixTcpOptions> {
    const controller = this.controller
    const cleanups = this.cleanups
    const json = this.json
    return {
      tool: TOOL,
      opts: { ...this.options, json: json.enabled, logLevel: 'info', verbose: 0 },
      args: [],
      log: this.log,
      json,
      status: new TtyStatus({ enabled: false }),
      signal: controller.signal,
      get stopping() {
        return controller.signal.aborted
      },
      onCleanup: (fn) => void cleanups.push(fn),
      end: (data = {}) => {
        this.end = data
        json.end(data)
      },
    }
  }
}
