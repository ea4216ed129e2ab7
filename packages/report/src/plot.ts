// kbx-plot: several saved runs (.hlog, .hgrm, JSON lines) in one comparison SVG.
import { readFileSync, writeFileSync } from 'node:fs'
import { basename } from 'node:path'
import { choiceOption, optionTable, runTool, stringOption, valueOption } from '@kbx/cli'
import type { OptionsOf, ToolContext } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { renderChart } from './chart.js'
import type { ChartInput } from './chart.js'
import { readRun } from './inputs.js'
import { checkWritable } from './recording.js'

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]
const HGRM_UNITS = { ns: 1, us: 1000, ms: 1e6, s: 1e9 } as const

export const plotOptions = optionTable({
  out: stringOption('-o, --out <file.svg>', 'the SVG to write', { required: true }),
  label: valueOption<string[]>('--label <name>', "each file's name in the legend, in the order of the files (repeatable; default: the file's name)", collect),
  title: stringOption('--title <text>', 'title (default: the files compared)'),
  tag: stringOption('--tag <tag>', '.hlog: plot only this series ("" for the untagged one); default every series'),
  hgrmUnit: choiceOption('--hgrm-unit <unit>', '.hgrm inputs: the unit of their values (kbx writes µs)', ['ns', 'us', 'ms', 's'], { default: 'us' }),
  latencyField: stringOption('--latency-field <path>', 'JSON lines: the latency summary in the end event, e.g. ackLatencyUs or order.heldUs (default: the first with p50 and p99)'),
  rateField: stringOption('--rate-field <path>', 'JSON lines: the rate in the interval events, e.g. pps (default: ackedPerSec, perSec.acked, pps or txPerSec)'),
})
export type PlotOptions = OptionsOf<typeof plotOptions>

/** The chart of the files, each labelled by --label or its name. */
export function chartOfFiles(files: readonly string[], o: PlotOptions): ChartInput {
  if (o.label !== undefined && o.label.length !== files.length) throw new UsageError(`--label given ${o.label.length} times for ${files.length} files: one per file, in order`)
  const runs = files.map((file, i) => {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (e) {
      throw new UsageError(`${file}: ${(e as Error).message}`, { op: `read ${file}` })
    }
    return readRun(file, text, o.label?.[i] ?? basename(file), {
      ...(o.tag === undefined ? {} : { tag: o.tag }),
      hgrmUnitNs: HGRM_UNITS[o.hgrmUnit],
      ...(o.latencyField === undefined ? {} : { latencyField: o.latencyField }),
      ...(o.rateField === undefined ? {} : { rateField: o.rateField }),
    })
  })
  const labels = runs.flatMap((r) => r.curves.map((c) => c.label))
  return {
    title: o.title ?? `latency: ${labels.join(' vs ')}`,
    subtitle: files.map((f) => basename(f)).join(', '),
    curves: runs.flatMap((r) => r.curves),
    rates: runs.flatMap((r) => r.rates),
    rateUnit: 'per second',
  }
}

function plot(ctx: ToolContext<PlotOptions>): void {
  const files = ctx.args[0] as string[]
  checkWritable('--out', ctx.opts.out)
  const chart = chartOfFiles(files, ctx.opts)
  writeFileSync(ctx.opts.out, renderChart(chart))
  ctx.end({
    out: ctx.opts.out,
    curves: chart.curves.map((c) => ({ label: c.label, count: c.count ?? null, points: c.points.length, maxUs: c.maxNs === undefined ? null : c.maxNs / 1000 })),
    rates: chart.rates.map((r) => ({ label: r.label, intervals: r.points.length })),
  })
}

export async function main(argv?: readonly string[]): Promise<number> {
  return runTool({
    tool: 'kbx-plot',
    description: 'Draw saved latency runs (.hlog, .hgrm, JSON lines of kbx tools) into one comparison SVG: percentile curves and per-interval rates',
    ...(argv ? { argv } : {}),
    options: plotOptions,
    build: (program) => program.argument('<files...>', '.hlog, .hgrm or JSON-lines files of the runs to compare'),
    examples: ['kbx-plot xdp.hlog socket.hlog --label xdp --label socket -o xdp-vs-socket.svg', 'kbx-plot run1.jsonl run2.jsonl --latency-field latencyUs -o fix.svg'],
    run: plot,
  })
}
