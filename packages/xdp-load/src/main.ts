import { KbxError, UsageError } from '@kbx/errors'
import { OptionDecl, XDP_MODES, choiceOption, parseChoice, flagOption, optionTable, parseInterfaceName, runTool, stringOption, valueOption } from '@kbx/cli'
import { writeAllSync } from '@kbx/stats'
import type { Command, OptionTable, ToolContext } from '@kbx/cli'
import { features, formatFeatures } from './features.js'
import { parseComponentArg, unloadComponent } from './chain-load.js'
import { DISPATCHER_KINDS, bareDispatcherAsAuto } from './dispatcher-choice.js'
import type { DispatcherKind } from './dispatcher-choice.js'
import { loadWithDispatcher } from './load-dispatch.js'
import { carriedBy, loadedByKbx, unloadThroughLibxdp } from './libxdp-attach.js'
import { loadAndPin } from './load.js'
import { formatStatusTable, xdpStatus } from './status.js'
import { runOnPcap } from './test-run.js'
import { unload, unloadAll } from './unload.js'

const TOOL = 'xdp-load'

const ifaceArg = (value: string): string => parseInterfaceName(value)

/** A subcommand with its option table; `start` runs it through runTool. */
interface Subcommand {
  summary: string
  start: (name: string, argv: readonly string[]) => Promise<number>
}

interface SubcommandSpec<O extends object> {
  summary: string
  options: OptionTable<O>
  /** Positional arguments. */
  build: (cmd: Command) => void
  run: (ctx: ToolContext<O>) => void | Promise<void>
  privileges: boolean
  examples: readonly string[]
}

function subcommand<O extends object>(spec: SubcommandSpec<O>): Subcommand {
  return {
    summary: spec.summary,
    start: (name, argv) =>
      runTool({
        tool: TOOL,
        argv,
        privileges: spec.privileges,
        options: spec.options,
        examples: spec.examples,
        build: (program) => {
          program.name(`${TOOL} ${name}`).description(spec.summary)
          spec.build(program)
        },
        run: spec.run,
      }),
  }
}

const noOptions = optionTable({})
const progOption = stringOption('--prog <name>', 'program in the object (default: the first)')

/** Inspection output: a table on a terminal, JSON when piped or with -j/--json, a table with --no-json. */
function wantsJson(argv: readonly string[]): boolean {
  if (argv.includes('--json') || argv.includes('-j')) return true
  if (argv.includes('--no-json')) return false
  return !process.stdout.isTTY
}

const loadCommand = (): Subcommand =>
  subcommand({
    summary: "attach XDP programs persistently (pinned bpf_link); several: through a dispatcher (libxdp's where the kernel allows it, else kbx's)",
    privileges: true,
    options: optionTable({
      prog: progOption,
      mode: choiceOption('-m, --mode <mode>', 'attach mode', XDP_MODES, { default: 'auto', listed: true }),
      priority: valueOption('--priority <list>', 'run order of the objects, lower first, one number per object (default: 10, 20, … after the chain\'s last)', parsePriorities, {}),
      dispatcher: new OptionDecl<DispatcherKind | true | undefined>(
        '--dispatcher [kind]',
        "which dispatcher chains the programs: auto (for several objects, the default): libxdp's where this kernel allows it (probed), else kbx's; kbx: kbx's, libxdp not probed; libxdp: only libxdp's. Given (bare: auto), even one object goes through a dispatcher, so more can join later",
        { parse: parseChoice('--dispatcher', DISPATCHER_KINDS) },
      ),
    }),
    build: (cmd) => cmd.argument('<iface>', 'interface', ifaceArg).argument('<objects...>', 'compiled XDP objects (.o), each OBJECT.o or OBJECT.o:PROG'),
    examples: [
      'sudo xdp-load load eth1 prog.o',
      'sudo xdp-load load veth0 prog.o --prog xdp_count --mode skb',
      'sudo xdp-load load eth1 filter.o counter.o        (filter runs first; counter sees what filter passes)',
      'sudo xdp-load load eth1 late.o --priority 5         (adds to the dispatcher already on eth1, first in line)',
      "sudo xdp-load load eth1 a.o b.o --dispatcher kbx    (kbx's dispatcher, libxdp's not probed)",
    ],
    run: (ctx) => {
      const [iface, objects] = ctx.args as [string, string[]]
      const opts = ctx.opts
      const priorities = opts.priority
      if (priorities && priorities.length !== objects.length) {
        throw new UsageError(`--priority has ${priorities.length} number(s) for ${objects.length} object(s)`, { op: 'load' })
      }
      if (opts.prog && objects.length > 1) throw new UsageError('--prog picks the program of one object; with several write OBJECT.o:PROG', { op: 'load' })
      const log = (m: string): void => ctx.log.info(m)
      const components = objects.map((arg, i) => {
        const request = parseComponentArg(arg)
        return { ...request, ...(opts.prog ? { prog: opts.prog } : {}), ...(priorities ? { priority: priorities[i]! } : {}) }
      })
      const dispatched = loadWithDispatcher({
        iface,
        components,
        mode: opts.mode,
        asked: opts.dispatcher === true ? 'auto' : opts.dispatcher, // main() turns a bare --dispatcher into =auto
        throughDispatcher: objects.length > 1 || opts.dispatcher !== undefined || priorities !== undefined,
        log: ctx.log,
      })
      if (dispatched === undefined) {
        const result = loadAndPin({ iface, object: objects[0]!, mode: opts.mode, ...(opts.prog ? { prog: opts.prog } : {}), log })
        ctx.log.info(`loaded ${result.program.name} (id ${result.program.id}) on ${iface} in ${result.mode} mode, pinned at ${result.link.pin}`)
        ctx.json.emit('load', { ...result })
        return
      }
      if ('libxdp' in dispatched) {
        const result = dispatched.libxdp
        ctx.log.info(`libxdp's dispatcher on ${iface} in ${result.mode} mode runs ${result.chain.map((c) => c.name).join(' → ')}`)
        ctx.json.emit('load', { ...result })
        return
      }
      const result = dispatched.kbx
      ctx.log.info(`dispatcher (id ${result.program.id}) on ${iface} in ${result.mode} mode runs ${result.chain.map((c) => c.name).join(' → ')}`)
      ctx.json.emit('load', { ...result })
    },
  })

const unloadCommand = (): Subcommand =>
  subcommand({
    summary: 'remove what xdp-load attached (--all: from every interface)',
    privileges: true,
    options: optionTable({
      all: flagOption('--all', 'every interface kbx has pinned programs on'),
      force: flagOption('--force', 'also detach programs kbx did not attach'),
      prog: stringOption('--prog <name>', "remove one program from the interface's dispatcher chain, the others keep running"),
    }),
    build: (cmd) => cmd.argument('[iface]', 'interface', ifaceArg),
    examples: ['sudo xdp-load unload eth1', 'sudo xdp-load unload eth1 --prog count_udp_drop', 'sudo xdp-load unload --all'],
    run: (ctx) => {
      const [iface] = ctx.args as [string | undefined]
      const opts = ctx.opts
      if (opts.prog !== undefined) {
        if (iface === undefined || opts.all) throw new UsageError('--prog needs an interface (and no --all)', { op: 'unload' })
        if (carriesLibxdpDispatcher(iface)) {
          const r = unloadThroughLibxdp(iface, opts.prog)
          ctx.log.info(`${iface}: removed ${r.removed.join(', ')} from libxdp's dispatcher; ${r.chain.length ? `it runs ${r.chain.map((c) => c.name).join(' → ')}` : 'nothing left'}`)
          ctx.json.emit('unload', { ...r })
          return
        }
        const r = unloadComponent(iface, opts.prog)
        ctx.log.info(`${iface}: removed ${r.removed}; ${r.chain.length ? `the chain runs ${r.chain.map((c) => c.name).join(' → ')}` : 'nothing left, unloaded'}`)
        ctx.json.emit('unload', { ...r })
        return
      }
      if ((iface === undefined) === !opts.all) throw new UsageError('give an interface or --all (not both)', { op: 'unload' })
      if (iface !== undefined && carriesLibxdpDispatcher(iface)) {
        if (!loadedByKbx(iface) && !opts.force) {
          throw new KbxError(`${iface} carries libxdp's dispatcher that xdp-load did not load (xdp-loader's?); leaving it alone`, { op: 'unload', errno: 16, hint: 'add --force to detach it anyway (through libxdp, its pins too)' })
        }
        const r = unloadThroughLibxdp(iface)
        ctx.log.info(`${iface}: libxdp's dispatcher detached with ${r.removed.join(', ') || 'no programs'}`)
        ctx.json.emit('unload', { ...r })
        return
      }
      const log = (m: string): void => ctx.log.warn(m)
      const results = opts.all ? unloadAll({ force: !!opts.force, log }) : [unload(iface!, { force: !!opts.force, log })]
      for (const r of results) {
        ctx.log.info(r.note ?? `${r.iface}: ${r.detached ? 'detached' : 'nothing attached'}${r.unpinned ? ', pins removed' : ''}`)
        ctx.json.emit('unload', { ...r })
      }
      if (opts.all && results.length === 0) ctx.log.info('no kbx pins: nothing to unload')
    },
  })

const statusCommand = (argv: readonly string[]): Subcommand =>
  subcommand({
    summary: "each interface's XDP program, mode, maps and owner",
    privileges: true,
    options: noOptions,
    build: (cmd) => cmd.argument('[iface]', 'interface', ifaceArg),
    examples: ['sudo xdp-load status', "sudo xdp-load status -j | jq '.data'"],
    run: (ctx) => {
      const [iface] = ctx.args as [string | undefined]
      const report = xdpStatus(iface)
      if (wantsJson(argv)) ctx.json.emit('status', { ...report })
      else writeAllSync(1, formatStatusTable(report))
    },
  })

const featuresCommand = (argv: readonly string[]): Subcommand =>
  subcommand({
    summary: 'probe what this kernel (and interface) supports',
    privileges: true,
    options: noOptions,
    build: (cmd) => cmd.argument('[iface]', 'interface (probes XDP modes and AF_XDP on it)', ifaceArg),
    examples: ['sudo xdp-load features', 'sudo xdp-load features veth0 -j'],
    run: (ctx) => {
      const [iface] = ctx.args as [string | undefined]
      const report = features(iface)
      if (wantsJson(argv)) ctx.json.emit('features', { ...report })
      else writeAllSync(1, formatFeatures(report))
    },
  })

const testCommand = (): Subcommand =>
  subcommand({
    summary: 'run a program on every packet of a pcap (BPF_PROG_TEST_RUN), no interface needed',
    privileges: true,
    options: optionTable({
      pcap: stringOption('--pcap <file>', 'input capture (classic pcap, Ethernet)', { required: true }),
      prog: progOption,
      out: stringOption('--out <file>', 'write the frames that pass/tx/redirect, as the program left them'),
    }),
    build: (cmd) => cmd.argument('<object>', 'compiled XDP object (.o)'),
    examples: ['sudo xdp-load test prog.o --pcap in.pcap --out passed.pcap'],
    run: (ctx) => {
      const [object] = ctx.args as [string]
      const opts = ctx.opts
      const pcap = opts.pcap
      ctx.json.start({ object, pcap })
      const summary = runOnPcap({ object, pcap, ...(opts.prog ? { prog: opts.prog } : {}), ...(opts.out ? { out: opts.out } : {}) }, (v) =>
        ctx.json.emit('packet', { ...v }),
      )
      ctx.end({ ...summary })
    },
  })

const subcommands = (argv: readonly string[]): Record<string, Subcommand> => ({
  load: loadCommand(),
  unload: unloadCommand(),
  status: statusCommand(argv),
  features: featuresCommand(argv),
  test: testCommand(),
})

/** Whether the interface runs libxdp's dispatcher (false for an interface that is gone: its stale kbx pins go the usual way). */
function carriesLibxdpDispatcher(iface: string): boolean {
  try {
    return carriedBy(iface) === 'libxdp-dispatcher'
  } catch {
    return false
  }
}

function parsePriorities(value: string): number[] {
  return value.split(',').map((p) => {
    const n = Number(p)
    if (!/^-?\d+$/.test(p.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`--priority: "${p}" is not an integer`, { op: 'parse arguments' })
    return n
  })
}

function printHelp(commands: Record<string, Subcommand>, fd: number): void {
  const width = Math.max(...Object.keys(commands).map((n) => n.length))
  writeAllSync(
    fd,
    [
      `usage: ${TOOL} <command> [options]`,
      '',
      'Loads, inspects and removes XDP programs (the kbx loader).',
      '',
      'commands:',
      ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
      '',
      `run \`${TOOL} <command> --help\` for a command's options`,
      '',
      'examples:',
      `  sudo ${TOOL} load eth1 prog.o`,
      `  sudo ${TOOL} status          (a table on a terminal; -j or a pipe: JSON lines)`,
      `  sudo ${TOOL} unload eth1`,
      '',
    ].join('\n'),
  )
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const [name, ...rest] = argv
  const commands = subcommands(rest)
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    printHelp(commands, name === undefined ? 2 : 1)
    process.exit(name === undefined ? 2 : 0)
  }
  const command = commands[name]
  if (command === undefined) {
    writeAllSync(2, `${TOOL}: unknown command "${name}"\n`)
    printHelp(commands, 2)
    process.exit(2)
  }
  await command.start(name, name === 'load' ? bareDispatcherAsAuto(rest) : rest)
}
