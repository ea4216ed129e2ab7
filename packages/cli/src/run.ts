import { isatty } from 'node:tty'
import { Command, CommanderError } from 'commander'
import { KbxError, UsageError } from '@kbx/errors'
import { JsonLines, TtyStatus, createLogger, formatSummary, liveLineEnabled, writeAllSync } from '@kbx/stats'
import type { EventData, JsonLinesOutput, Logger } from '@kbx/stats'
import { OUTPUT_OPTIONS, addCommonOptions, outputOptionsOf } from './common.js'
import type { OutputOptions } from './common.js'
import { resolveLogLevel } from './options.js'
import { requirePrivileges } from './privileges.js'
import type { PrivilegeOptions } from './privileges.js'
import type { OptionTable } from './table.js'

export type Cleanup = () => void | Promise<void>

/** What a command's `run` gets. */
export interface ToolContext<O extends object = object> {
  readonly tool: string
  /** The user's arguments, as given (for a report's title; runTool always sets them). */
  readonly argv?: readonly string[]
  /** All parsed options: the command's table's and the output ones runTool adds. */
  readonly opts: O & OutputOptions
  /** Parsed positional arguments (after their parsers). */
  readonly args: unknown[]
  readonly log: Logger
  readonly json: JsonLines
  /** The live line on stderr: drawn only on a terminal and without --no-live. */
  readonly status: TtyStatus
  /** Aborted on the first SIGINT/SIGTERM; the command should wind down and return. */
  readonly signal: AbortSignal
  /** True once a stop was requested. */
  readonly stopping: boolean
  /** Registers an undo step (detach, close, unpin). Cleanups run once each, newest first. */
  onCleanup(fn: Cleanup): void
  /** Emits the `end` event and, on a terminal, prints a short human summary on stderr. */
  end(data?: EventData): void
}

export interface ToolSpec<O extends object = object> {
  tool: string
  description?: string
  version?: string
  /** User arguments; default process.argv.slice(2). */
  argv?: readonly string[]
  /** The command's options, one declaration each (optionTable, with commonOptions for the shared ones); ctx.opts is typed from it. */
  options: OptionTable<O>
  /** Command lines shown under "Examples:" at the end of --help, as a user types them. */
  examples?: readonly string[]
  /** Declare positional arguments (and anything else the table does not say), after the table's options. */
  build?: (program: Command) => void
  /** Check root/capabilities after parsing, before `run`. */
  privileges?: boolean | PrivilegeOptions
  run: (ctx: ToolContext<O>) => void | Promise<void>
  /** Default true: exit the process with the code. False: resolve with it (handlers removed). */
  exit?: boolean
  /** Where JSON lines go; default stdout. */
  jsonOut?: JsonLinesOutput
}

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

interface Outcome {
  code: number
  forced: boolean
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 }
const FORCED_CLEANUP_TIMEOUT_MS = 3000

/** The "Examples:" block of --help. */
export function formatExamples(examples: readonly string[]): string {
  return ['', 'Examples:', ...examples.map((e) => `  ${e}`)].join('\n')
}

/** The command line parsed by commander with the table's and the output options, or the exit code of a usage error. */
async function parseCommandLine<O extends object>(spec: ToolSpec<O>): Promise<Command | number> {
  const program = new Command(spec.tool)
  program.exitOverride()
  program.configureOutput({
    writeOut: (s) => void writeAllSync(1, s),
    writeErr: (s) => void writeAllSync(2, s),
  })
  program.showHelpAfterError(`(run ${spec.tool} --help for usage)`)
  if (spec.description !== undefined) program.description(spec.description)
  if (spec.version !== undefined) program.version(spec.version)
  spec.options.register(program)
  spec.build?.(program)
  addCommonOptions(program, OUTPUT_OPTIONS)
  if (spec.examples !== undefined && spec.examples.length > 0) program.addHelpText('after', formatExamples(spec.examples))
  program.action(() => {})
  try {
    await program.parseAsync([...(spec.argv ?? process.argv.slice(2))], { from: 'user' })
    return program
  } catch (err) {
    return usageExitCode(spec.tool, err)
  }
}

/**
 * A run's stop and failure handling: the cleanups (run once each, newest first), SIGINT/SIGTERM (the first
 * aborts `signal`, a second runs the cleanups left and forces an exit), uncaught errors (reported, the run
 * aborted), and the `error` event and exit code of an error.
 */
class RunLifecycle {
  readonly controller = new AbortController()
  stopping = false
  /** An uncaught error happened: the run fails whatever it returns. */
  fatal = false
  private settled = false
  private forcing = false
  private readonly cleanups: Cleanup[] = []
  private forceExit: ((code: number) => void) | undefined
  private crash: ((err: unknown) => void) | undefined
  /** Settles with the exit code when a second signal forces the exit. */
  readonly forced = new Promise<Outcome>((resolve) => {
    this.forceExit = (code) => resolve({ code, forced: true })
  })
  /** Settles with the exit code of the first uncaught error. */
  readonly crashed = new Promise<Outcome>((resolve) => {
    this.crash = (err) => resolve({ code: this.report(err), forced: false })
  })

  constructor(
    private readonly log: Logger,
    private readonly json: JsonLines,
  ) {}

  onCleanup(fn: Cleanup): void {
    this.cleanups.push(fn)
  }

  async runCleanups(): Promise<boolean> {
    let ok = true
    for (let fn = this.cleanups.pop(); fn !== undefined; fn = this.cleanups.pop()) {
      try {
        await fn()
      } catch (err) {
        ok = false
        this.log.error({ ...errorFields(err) }, `cleanup failed: ${messageOf(err)}`)
      }
    }
    return ok
  }

  /** The `error` event and the log line of err; its exit code. */
  report(err: unknown): number {
    this.json.error(err)
    if (err instanceof KbxError) {
      this.log.error({ op: err.op, ...(err.code === undefined ? {} : { code: err.code }), ...(err.hint === undefined ? {} : { hint: err.hint }) }, err.message)
      if (err.stack !== undefined) this.log.debug({ stack: err.stack }, 'stack')
      return err.exitCode
    }
    this.log.error(messageOf(err))
    if (err instanceof Error && err.stack !== undefined) this.log.debug({ stack: err.stack }, 'stack')
    return EXIT_FAILURE
  }

  private readonly onSignal = (sig: NodeJS.Signals): void => {
    const code = SIGNAL_EXIT[sig] ?? 128
    if (!this.stopping) {
      this.stopping = true
      this.log.info({ signal: sig }, `stopping (${sig}); send it again to force`)
      this.controller.abort(new Error(`stopped by ${sig}`))
      return
    }
    if (this.forcing) return void this.forceExit?.(code)
    this.forcing = true
    this.log.warn({ signal: sig }, `second ${sig}: running cleanups and exiting`)
    const timer = setTimeout(() => this.forceExit?.(code), FORCED_CLEANUP_TIMEOUT_MS)
    void this.runCleanups().finally(() => {
      clearTimeout(timer)
      this.forceExit?.(code)
    })
  }

  private readonly onFatal = (err: unknown): void => {
    if (this.settled) return
    if (this.fatal) return void this.log.error(`another uncaught error: ${messageOf(err)}`)
    this.fatal = true
    this.crash?.(err)
    if (!this.controller.signal.aborted) this.controller.abort(err)
  }

  install(): void {
    process.on('SIGINT', this.onSignal)
    process.on('SIGTERM', this.onSignal)
    process.on('uncaughtException', this.onFatal)
    process.on('unhandledRejection', this.onFatal)
  }

  /** After the run: late errors are ignored, the handlers removed. */
  uninstall(): void {
    this.settled = true
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    process.off('uncaughtException', this.onFatal)
    process.off('unhandledRejection', this.onFatal)
  }
}

/**
 * The wrapper every command runs in: parses argv (exit 2 on bad usage), builds the logger and
 * JSON-lines emitter from the common options, turns SIGINT/SIGTERM into an abort signal, runs
 * cleanups newest first, and maps errors to `error` events and exit codes (0 ok, 1 failure,
 * 2 usage). A second signal forces an exit (130 for SIGINT) after the cleanups that had not run yet.
 */
export async function runTool<O extends object>(spec: ToolSpec<O>): Promise<number> {
  const exitProcess = spec.exit ?? true
  const finish = (code: number): number => {
    if (exitProcess) process.exit(code)
    return code
  }
  const program = await parseCommandLine(spec)
  if (typeof program === 'number') return finish(program)

  const opts: O & OutputOptions = { ...spec.options.values(program), ...outputOptionsOf(program) }
  // --no-live (commonOptions.live) turns the live line off; it is drawn only when stderr is a terminal
  const live = (opts as { live?: boolean }).live
  const stderrIsTerminal = isatty(2)
  const status = new TtyStatus({ enabled: liveLineEnabled({ live, isTTY: stderrIsTerminal }) })
  const log = createLogger({ name: spec.tool, level: resolveLogLevel(opts.logLevel, opts.verbose), status })
  const json = new JsonLines({ tool: spec.tool, enabled: opts.json, ...(spec.jsonOut === undefined ? {} : { out: spec.jsonOut }) })
  const run = new RunLifecycle(log, json)
  run.install()

  const ctx: ToolContext<O> = {
    tool: spec.tool,
    argv: [...(spec.argv ?? process.argv.slice(2))],
    opts,
    args: [...program.processedArgs],
    log,
    json,
    status,
    signal: run.controller.signal,
    get stopping() {
      return run.stopping
    },
    onCleanup(fn) {
      run.onCleanup(fn)
    },
    end(data = {}) {
      json.end(data)
      status.stop()
      if (stderrIsTerminal) writeAllSync(2, formatSummary(spec.tool, data))
    },
  }

  const main = (async (): Promise<Outcome> => {
    try {
      if (spec.privileges) requirePrivileges(spec.tool, spec.privileges === true ? {} : spec.privileges)
      await spec.run(ctx)
      return { code: EXIT_OK, forced: false }
    } catch (err) {
      return { code: run.report(err), forced: false }
    }
  })()

  let outcome = await Promise.race([main, run.crashed, run.forced])
  if (!outcome.forced) {
    const cleaned = await Promise.race([run.runCleanups(), run.forced])
    if (typeof cleaned !== 'boolean') outcome = cleaned
    else if (!cleaned && outcome.code === EXIT_OK) outcome = { code: EXIT_FAILURE, forced: false }
  }
  // An uncaught error while cleaning up still makes the run a failure.
  if (run.fatal && outcome.code === EXIT_OK) outcome = { code: EXIT_FAILURE, forced: false }
  run.uninstall()
  status.stop()
  return finish(outcome.code)
}

function usageExitCode(tool: string, err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander already printed its message (or the help/version text).
    return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE
  }
  if (err instanceof UsageError) {
    writeAllSync(2, `${tool}: error: ${err.message}\n${err.hint === undefined ? '' : `  hint: ${err.hint}\n`}(run ${tool} --help for usage)\n`)
    return EXIT_USAGE
  }
  throw err
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof KbxError) return { op: err.op, code: err.code, hint: err.hint }
  return { type: err instanceof Error ? err.name : typeof err }
}
