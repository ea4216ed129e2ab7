// The options every command shares, declared once (same names, defaults and parsing everywhere, xdp-tools style).
import { Option } from 'commander'
import type { Command } from 'commander'
import { LOG_LEVELS } from '@kbx/stats'
import type { LogLevel } from '@kbx/stats'
import { XDP_MODES, parseLogLevel } from './options.js'
import { OptionDecl, choiceOption, intOption, secondsOption, stringOption } from './table.js'
import type { OptionsOf } from './table.js'

/** Put the ones a command has in its option table: `optionTable({ …, mode: commonOptions.mode })`. */
export const commonOptions = {
  mode: choiceOption('--mode <mode>', 'XDP attach mode: native, skb or auto (native, else skb)', XDP_MODES, { default: 'auto' }),
  queue: intOption('--queue <n>', 'RX/TX queue id', { min: 0, max: 1023, default: 0 }),
  /** Seconds; 0 = until stopped. */
  duration: secondsOption('--duration <seconds>', 'stop after this long (0 = until Ctrl-C)', { default: 0 }),
  /** Seconds between `interval` events. */
  interval: secondsOption('--interval <seconds>', 'seconds between interval stats', { min: 0.01, default: 1 }),
  /** Live status line on stderr (only on a terminal); --no-live turns it off. Typed optional: absent means on. */
  live: new OptionDecl<boolean | undefined>('--no-live', 'no live status line on stderr (it is drawn only when stderr is a terminal)'),
}

/**
 * Latency files, for tools that measure a latency: `...latencyFileOptions` in the table, then
 * LatencyRecording.open(ctx, …) of @kbx/report writes them.
 */
export const latencyFileOptions = {
  hgrm: stringOption('--hgrm <file>', 'write the latency percentile distribution here (HdrHistogram .hgrm text, values in µs)'),
  hlog: stringOption('--hlog <file>', 'write an HdrHistogram interval log here (.hlog: one compressed histogram per interval, values in ns)'),
  plot: stringOption('--plot <file.svg>', 'draw the percentile curve and the per-interval rate into this SVG'),
}

/** The options runTool adds to every command: where output goes and how much of it. */
export interface OutputOptions {
  /** JSON lines on stdout (--no-json turns them off). */
  json: boolean
  logLevel: LogLevel
  /** How many times -v was given. */
  verbose: number
}

/** Options every command may have, after parsing. Which ones exist depends on its table. */
export type CommonOptions = Partial<OptionsOf<typeof commonOptions>> & OutputOptions

export type LatencyFileOptions = OptionsOf<typeof latencyFileOptions>

export type CommonOptionName = keyof typeof commonOptions | keyof OutputOptions
/** The options runTool always adds: where output goes and how much of it. */
export const OUTPUT_OPTIONS: readonly CommonOptionName[] = ['json', 'logLevel', 'verbose']

function increment(_value: string, previous: number): number {
  return previous + 1
}

function hasOption(cmd: Command, long: string): boolean {
  return cmd.options.some((o) => o.long === long)
}

function addOutputOption(cmd: Command, name: keyof OutputOptions): void {
  switch (name) {
    case 'json':
      if (!hasOption(cmd, '--json')) {
        cmd.addOption(new Option('-j, --json', 'JSON lines on stdout').default(true))
        cmd.addOption(new Option('--no-json', 'no JSON lines on stdout'))
      }
      break
    case 'logLevel':
      if (!hasOption(cmd, '--log-level')) {
        cmd.addOption(new Option('--log-level <level>', `stderr log level: ${LOG_LEVELS.join(', ')}`).argParser(parseLogLevel).default('info'))
      }
      break
    case 'verbose':
      if (!hasOption(cmd, '--verbose')) {
        cmd.addOption(new Option('-v, --verbose', 'more logs: -v debug, -vv trace (repeatable)').argParser(increment).default(0))
      }
      break
  }
}

/** Adds the shared flags by name. Options already present are left alone, so calling it twice is harmless. */
export function addCommonOptions(cmd: Command, which: readonly CommonOptionName[] = ['mode', 'queue', 'duration', 'interval']): Command {
  for (const name of which) {
    if (name === 'json' || name === 'logLevel' || name === 'verbose') addOutputOption(cmd, name)
    else if (!hasOption(cmd, name === 'live' ? '--no-live' : `--${name}`)) cmd.addOption(commonOptions[name].toOption())
  }
  return cmd
}

/** The output options after parsing. */
export function outputOptionsOf(cmd: Command): OutputOptions {
  return { json: cmd.getOptionValue('json'), logLevel: cmd.getOptionValue('logLevel'), verbose: cmd.getOptionValue('verbose') }
}
