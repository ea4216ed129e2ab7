import { UsageError } from '@kbx/errors'
import { Option, XDP_MODES, parseInterfaceName, runTool } from '@kbx/cli'
import { writeAllSync } from '@kbx/stats'
import type { Command, ToolContext, XdpMode } from '@kbx/cli'
import { features, formatFeatures } from './features.js'
import { loadAndPin } from './load.js'
import { formatStatusTable, xdpStatus } from './status.js'
import { runOnPcap } from './test-run.js'
import { unload, unloadAll } from './unload.js'

const TOOL = 'xdp-load'

const ifaceArg = (value: string): string => parseInterfaceName(value)

interface Subcommand {
  summary: string
  build: (cmd: Command) => void
  run: (ctx: ToolContext) => void | Promise<void>
  privileges: boolean
}

/** Inspection output: a table on a terminal, JSON when piped or with --json, a table with --no-json. */
function wantsJson(argv: readonly string[]): boolean {
  if (argv.includes('--json')) return true
  if (argv.includes('--no-json')) return false
  return !process.stdout.isTTY
}

const subcommands = (argv: readonly string[]): Record<string, Subcommand> => ({
  load: {
    summary: 'attach an XDP program persistently (pinned bpf_link)',
    privileges: true,
    build: (cmd) =>
      cmd
        .argument('<iface>', 'interface', ifaceArg)
        .argument('<object>', 'compiled XDP object (.o)')
        .option('--prog <name>', 'program in the object (default: the first)')
        .addOption(new Option('-m, --mode <mode>', 'attach mode').choices(XDP_MODES).default('auto')),
    run: (ctx) => {
      const [iface, object] = ctx.args as [string, string]
      const opts = ctx.opts as { prog?: string; mode: XdpMode }
      const result = loadAndPin({ iface, object, mode: opts.mode, ...(opts.prog ? { prog: opts.prog } : {}), log: (m) => ctx.log.info(m) })
      ctx.log.info(`loaded ${result.program.name} (id ${result.program.id}) on ${iface} in ${result.mode} mode, pinned at ${result.link.pin}`)
      ctx.json.emit('load', { ...result })
    },
  },
  unload: {
    summary: 'remove what xdp-load attached (--all: from every interface)',
    privileges: true,
    build: (cmd) =>
      cmd
        .argument('[iface]', 'interface', ifaceArg)
        .option('--all', 'every interface kbx has pinned programs on')
        .option('--force', 'also detach programs kbx did not attach'),
    run: (ctx) => {
      const [iface] = ctx.args as [string | undefined]
      const opts = ctx.opts as { all?: boolean; force?: boolean }
      if ((iface === undefined) === !opts.all) throw new UsageError('give an interface or --all (not both)', { op: 'unload' })
      const log = (m: string): void => ctx.log.warn(m)
      const results = opts.all ? unloadAll({ force: !!opts.force, log }) : [unload(iface!, { force: !!opts.force, log })]
      for (const r of results) {
        ctx.log.info(r.note ?? `${r.iface}: ${r.detached ? 'detached' : 'nothing attached'}${r.unpinned ? ', pins removed' : ''}`)
        ctx.json.emit('unload', { ...r })
      }
      if (opts.all && results.length === 0) ctx.log.info('no kbx pins: nothing to unload')
    },
  },
  status: {
    summary: "each interface's XDP program, mode, maps and owner",
    privileges: true,
    build: (cmd) => cmd.argument('[iface]', 'interface', ifaceArg),
    run: (ctx) => {
      const [iface] = ctx.args as [string | undefined]
      const report = xdpStatus(iface)
      if (wantsJson(argv)) ctx.json.emit('status', { ...report })
      else writeAllSync(1, formatStatusTable(report))
    },
  },
  features: {
    summary: 'probe what this kernel (and interface) supports',
    privileges: true,
    build: (cmd) => cmd.argument('[iface]', 'interface (probes XDP modes and AF_XDP on it)', ifaceArg),
    run: (ctx) => {
      const [iface] = ctx.args as [string | undefined]
      const report = features(iface)
      if (wantsJson(argv)) ctx.json.emit('features', { ...report })
      else writeAllSync(1, formatFeatures(report))
    },
  },
  test: {
    summary: 'run a program on every packet of a pcap (BPF_PROG_TEST_RUN), no interface needed',
    privileges: true,
    build: (cmd) =>
      cmd
        .argument('<object>', 'compiled XDP object (.o)')
        .requiredOption('--pcap <file>', 'input capture (classic pcap, Ethernet)')
        .option('--prog <name>', 'program in the object (default: the first)')
        .option('--out <file>', 'write the frames that pass/tx/redirect, as the program left them'),
    run: (ctx) => {
      const [object] = ctx.args as [string]
      const opts = ctx.opts as { pcap?: string; prog?: string; out?: string }
      const pcap = opts.pcap ?? '' // a required option: commander refuses the command without it
      ctx.json.start({ object, pcap })
      const summary = runOnPcap({ object, pcap, ...(opts.prog ? { prog: opts.prog } : {}), ...(opts.out ? { out: opts.out } : {}) }, (v) =>
        ctx.json.emit('packet', { ...v }),
      )
      ctx.end({ ...summary })
    },
  },
})

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
  await runTool({
    tool: TOOL,
    argv: rest,
    privileges: command.privileges,
    build: (program) => {
      program.name(`${TOOL} ${name}`).description(command.summary)
      command.build(program)
    },
    run: command.run,
  })
}
