// ab-feed --replay: captured feed traffic (pcap or pcapng) sent again on the two lines with its original
// timing (or --speed N, --top-speed), readdressed to the bed, with the impairments of plan.ts on top, and
// the end event saying what each line replayed (frames, and the feed's numbers where the payload decodes).
import { flagOption, runLoop, valueOption } from '@kbx/cli'
import type { ToolContext } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { interfaceInfo, parseFrame, readCapture, resolveNextHop, type CaptureFile } from '@kbx/net'
import { Umem, XskSocket } from '@kbx/xsk'
import type { TxBatch } from '@kbx/xsk'
import type { FeedOptions } from './feed.js'
import { feedLiveLine } from './feed-live.js'
import { openRecorder, sendLine, type FrameRecorder } from './record.js'
import { decodePayload, type FeedFormat } from './format.js'
import { NO_IMPAIRMENTS, PlanWorkspace, makePlan, type LineImpairments, type LineTruth } from './plan.js'
import { ReplayLineWriter, prepareFrames, replayablePackets, type CaptureContents, type SkipReason } from './replay-frames.js'

/** The --replay options, for ab-feed's option table; ab-feed's other options apply as its README says. */
export const replayOptions = {
  replay: valueOption<string[]>('--replay <capture>', 'replay a pcap/pcapng capture instead of generating a feed: once for both lines, twice for line A then line B', (v, previous) => [...(previous ?? []), v]),
  speed: valueOption('--speed <n>', 'replay N times as fast as captured (0.5 = half speed)', parseSpeed, { default: 1 }),
  topSpeed: flagOption('--top-speed', 'replay as fast as the lines go, ignoring the capture timing'),
  loop: flagOption('--loop', 'replay the capture again and again until --duration or a signal'),
  keepMulticast: flagOption('--keep-multicast', 'packets captured to a multicast group keep their group, MAC and port'),
  keepPorts: flagOption('--keep-ports', 'keep the captured UDP destination ports instead of --port'),
  splitInterfaces: flagOption('--split-interfaces', 'one pcapng of both lines (tshark -i A -i B): its first interface is line A, its second line B'),
}

function parseSpeed(v: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0 || n > 1e6) throw new UsageError(`--speed must be a number above 0 (2 = twice as fast), not ${JSON.stringify(v)}`, { op: 'parse --speed' })
  return n
}

type Impair = Pick<FeedOptions, 'lossA' | 'lossB' | 'burstA' | 'burstB' | 'dupA' | 'dupB' | 'reorderA' | 'reorderB' | 'delayB' | 'alternate' | 'gap' | 'seed'>

function lineImpairments(loss: number, burst: [number, number] | undefined, dup: number, reorder: [number, number] | undefined): LineImpairments {
  return { loss, burstProb: burst?.[0] ?? 0, burstLength: burst?.[1] ?? 0, dup, reorder: reorder?.[0] ?? 0, reorderDistance: reorder?.[1] ?? 0 }
}

/** A line's send list: the packet of each send and when it is due (ns after a pass starts, at speed 1). */
export interface SendList {
  entries: Uint32Array
  dueNs: Float64Array
  truth: LineTruth
}

/**
 * The lines' send lists over the captures' packets, impaired as ab-feed's plan impairs a feed (plan.ts: item
 * k = packet k). One capture: it is both lines' feed, so every impairment applies (true gaps, alternating
 * outages and --delay-b in packets included). Two captures: each line its own, only the per-line
 * impairments (loss, bursts, duplicates, reordering). A reordered packet goes out at the time of the latest
 * packet before it in its list; a line lagging by L packets sends packet k at the time of packet k + L.
 */
export function replayPlan(times: Float64Array[], o: Impair, format: FeedFormat): { lines: [SendList, SendList]; withheld: number[] } {
  const a = lineImpairments(o.lossA, o.burstA, o.dupA, o.reorderA)
  const b = lineImpairments(o.lossB, o.burstB, o.dupB, o.reorderB)
  const base = { format, seed: o.seed, streams: 1, startSeq: 0n, delayB: 0 }
  if (times.length === 1) {
    const t = times[0]!
    const plan = makePlan({ ...base, count: t.length, gapProb: o.gap, a, b, delayB: o.delayB, alternate: o.alternate })
    const lags = [Math.max(0, -o.delayB), Math.max(0, o.delayB)]
    return {
      lines: [sendList(plan.lineA, t, lags[0]!, plan.truthA), sendList(plan.lineB, t, lags[1]!, plan.truthB)],
      withheld: [...plan.withheld],
    }
  }
  const one = (timesOf: Float64Array, imp: LineImpairments, seed: number): SendList => {
    const plan = makePlan({ ...base, seed, count: timesOf.length, gapProb: 0, a: imp, b: NO_IMPAIRMENTS }, undefined, new PlanWorkspace())
    return sendList(plan.lineA, timesOf, 0, plan.truthA)
  }
  return { lines: [one(times[0]!, a, o.seed), one(times[1]!, b, o.seed ^ 0x5bd1e995)], withheld: [] }
}

function sendList(list: Uint32Array, times: Float64Array, lag: number, truth: LineTruth): SendList {
  const entries = list.slice()
  const dueNs = new Float64Array(entries.length)
  const last = times.length - 1
  const step = last > 0 ? (times[last]! - times[0]!) / last : 0
  for (let i = 0, max = 0; i < entries.length; i++) {
    max = Math.max(max, entries[i]!)
    const at = max + lag
    dueNs[i] = at <= last ? times[at]! : times[last]! + (at - last) * step
  }
  return { entries, dueNs, truth: { ...truth } }
}

interface ReplayLine {
  name: 'A' | 'B'
  socket: XskSocket
  batch: TxBatch
  writer: ReplayLineWriter
  recorder?: FrameRecorder | undefined
}

/** ab-feed --replay: the whole run. Every capture is read and checked before a socket opens. */
export async function runReplay(ctx: ToolContext<FeedOptions>): Promise<void> {
  const o = ctx.opts
  const [ifA, ifB] = ctx.args as [string, string]
  const files = o.replay ?? []
  if (files.length > 2) throw new UsageError(`--replay takes one capture (both lines) or two (line A, line B), not ${files.length}`, { op: 'parse --replay' })
  if ((files.length === 2 || o.splitInterfaces) && (o.gap > 0 || o.alternate > 0 || o.delayB !== 0))
    throw new UsageError('--gap, --alternate and --delay-b relate the two lines packet by packet: they need one capture replayed on both', { op: 'parse --replay' })
  const captures = loadCaptures(files, o.splitInterfaces ?? false)
  const t0 = captures.map((c) => c.packets[0]!.tsNs).reduce((x, y) => (y < x ? y : x))
  // Capture times relative to the earliest packet of all captures: the lines keep their skew.
  const times = captures.map((c) => Float64Array.from(c.packets, (p) => Number(p.tsNs - t0)))
  const { lines: sendLists, withheld } = replayPlan(times, o, o.format)
  const scale = o.topSpeed ? 0 : 1 / o.speed
  for (const list of sendLists) for (let i = 0; i < list.dueNs.length; i++) list.dueNs[i] = list.dueNs[i]! * scale
  const span = Math.max(...sendLists.map((l) => l.dueNs.at(-1) ?? 0))
  const packetsPerPass = Math.max(...times.map((t) => t.length))
  // A pass of --loop lasts the capture's span plus one mean packet spacing, so the first packet of a pass does not land on the last of the previous.
  const period = span + (packetsPerPass > 1 ? span / (packetsPerPass - 1) : 1e6 * scale)

  const lineOf = (name: 'A' | 'B', iface: string, dst: string, capture: CaptureContents, list: SendList): ReplayLine => {
    const hop = resolveNextHop(dst, { iface })
    const frames = prepareFrames(capture.packets, {
      srcMac: interfaceInfo(iface).mac,
      dstMac: hop.nextHopMac,
      srcIp: hop.srcIp,
      dstIp: dst,
      dstPort: o.keepPorts ? undefined : o.port,
      keepMulticast: o.keepMulticast ?? false,
    })
    const umem = Umem.create({ frameCount: 4096 })
    ctx.onCleanup(() => umem.close())
    const socket = XskSocket.create({ umem, iface, queue: 0, rx: false, log: (m) => ctx.log.info(m) })
    ctx.onCleanup(() => socket.close())
    const recorder = openRecorder(ctx, name === 'A' ? o.recordA : o.recordB)
    return { name, socket, batch: socket.txBatch(64), writer: new ReplayLineWriter(frames, list.entries, list.dueNs, umem), recorder }
  }
  const lines = [lineOf('A', ifA, o.dstA, captures[0]!, sendLists[0]), lineOf('B', ifB, o.dstB, captures.at(-1)!, sendLists[1])]
  ctx.json.start({
    mode: 'replay',
    lineA: ifA,
    lineB: ifB,
    captures: captures.map((c, i) => ({ file: files[Math.min(i, files.length - 1)], ...(o.splitInterfaces ? { interface: i } : {}), format: c.format, packets: c.total, replayable: c.packets.length, skipped: c.skipped })),
    speed: o.topSpeed ? 'top' : o.speed,
    loop: o.loop ?? false,
    spanSeconds: span / 1e9,
    planned: { A: sendLists[0].entries.length, B: sendLists[1].entries.length },
    multicast: { A: lines[0]!.writer.frames.multicast, B: lines[1]!.writer.frames.multicast },
  })

  const started = performance.now()
  let passStart = 0
  let passes = 0
  const sent = () => ({ A: lines[0]!.socket.statistics().txCompleted, B: lines[1]!.socket.statistics().txCompleted })
  const live = feedLiveLine(ctx)
  let sleep: Promise<void> | undefined
  const stop = await runLoop(
    ctx,
    () => {
      const now = (performance.now() - started) * 1e6 - passStart
      for (const line of lines) {
        line.writer.fill(line.batch, now)
        if (line.batch.count > 0) sendLine(line)
      }
      if (lines.every((l) => l.writer.done && l.batch.count === 0)) {
        passes++
        if (!o.loop) return false
        passStart += o.topSpeed ? now : period
        for (const line of lines) line.writer.rewind()
        return
      }
      if (lines.every((l) => l.batch.count === l.batch.capacity)) return void lines[0]!.socket.wait({ tx: true }, 1)
      // Nothing due for a while: let the event loop run instead of spinning (timers are good to about a millisecond).
      const [a, b] = lines as [ReplayLine, ReplayLine]
      const wait = Math.min(a.writer.nextDueNs, b.writer.nextDueNs) - now
      if (wait > 3e6 && a.batch.count === 0 && b.batch.count === 0) sleep = new Promise((resolve) => setTimeout(resolve, Math.min(wait / 1e6 - 2, 50)))
    },
    {
      intervalSec: o.interval,
      durationSec: o.duration,
      onInterval: (tick) => {
        const s = sent()
        ctx.json.interval({ sent: s, passes })
        live(s, tick)
      },
      wait: () => {
        const s = sleep
        sleep = undefined
        return s
      },
    },
  )
  const submitted = lines.map((l) => l.writer.next - l.batch.count)
  for (const line of lines) line.batch.release()
  for (const line of lines) line.socket.drain(2000)
  const seconds = (performance.now() - started) / 1e3
  const counts = sent()
  const replayed = replayedNumbers(o.format, captures, sendLists, submitted, passes, withheld)
  ctx.end({
    mode: 'replay',
    stoppedBy: stop,
    complete: passes > 0,
    passes,
    seconds,
    framesPerSecond: seconds > 0 ? Math.round(Number(counts.A + counts.B) / seconds) : 0,
    lines: {
      A: { sent: counts.A, ...sendLists[0].truth, numbers: replayed.lines[0] },
      B: { sent: counts.B, ...sendLists[1].truth, numbers: replayed.lines[1] },
    },
    union: replayed.union,
    streams: replayed.streams,
    withheld: { count: replayed.withheld },
  })
}

interface LoadedCapture extends CaptureContents {
  format: 'pcap' | 'pcapng'
  total: number
}

/**
 * The captures' replayable packets, one list per line: each file's, or with --split-interfaces the two
 * interfaces of one pcapng (tshark -i A -i B) as lines A and B. A capture cut short or with nothing to replay
 * is a usage error.
 */
function loadCaptures(files: string[], split: boolean): LoadedCapture[] {
  if (!split) return files.map((path) => replayable(path, readWhole(path)))
  if (files.length !== 1) throw new UsageError(`--split-interfaces takes one capture holding both lines, not ${files.length}`, { op: 'parse --split-interfaces' })
  const path = files[0]!
  const file = readWhole(path)
  const ids = [...new Set(file.packets.map((p) => p.interfaceId))].sort((x, y) => x - y)
  if (ids.length !== 2)
    throw new UsageError(`--split-interfaces: ${path} holds packets of ${ids.length} interface(s), not two (line A's first, line B's second)`, { op: 'read capture' })
  return ids.map((id) => replayable(`${path} (interface ${id})`, { ...file, packets: file.packets.filter((p) => p.interfaceId === id) }))
}

function readWhole(path: string): CaptureFile {
  const file = readCapture(path)
  if (file.truncated)
    throw new UsageError(`${path} is cut short in the middle of a packet (${file.packets.length} whole packets before it)`, {
      op: 'read capture',
      hint: 'a capture copied while it was written, or cut by a full disk; `editcap IN OUT` keeps the whole packets',
    })
  return file
}

function replayable(what: string, file: CaptureFile): LoadedCapture {
  const contents = replayablePackets(file.packets)
  if (contents.packets.length === 0)
    throw new UsageError(`${what} holds no IPv4 UDP packet to replay (${file.packets.length} packets: ${describeSkipped(contents.skipped)})`, { op: 'read capture' })
  for (let i = 1; i < contents.packets.length; i++)
    if (contents.packets[i]!.tsNs < contents.packets[i - 1]!.tsNs) {
      // A capture merged out of order is replayed in its time order.
      contents.packets.sort((x, y) => (x.tsNs < y.tsNs ? -1 : x.tsNs > y.tsNs ? 1 : 0))
      break
    }
  return { ...contents, format: file.format, total: file.packets.length }
}

function describeSkipped(skipped: Record<SkipReason, number>): string {
  return Object.entries(skipped).map(([why, n]) => `${n} ${why}`).join(', ')
}

/**
 * What the lines carried of the feed: per line the numbers sent (distinct, decodable data packets), the
 * union over both lines and the capture's numbers on neither, per stream the lowest and highest number.
 */
function replayedNumbers(format: FeedFormat, captures: LoadedCapture[], lists: SendList[], submitted: number[], passes: number, withheld: number[]) {
  const keys = captures.map((c) =>
    c.packets.map((p) => {
      const f = parseFrame(p.frame)
      const d = f.ok ? decodePayload(format, p.frame.subarray(f.payloadOffset, f.payloadOffset + f.payloadLength)) : undefined
      return d?.kind === 'data' ? { stream: d.stream, sequence: d.sequence } : undefined
    }),
  )
  const union = new Map<string, { stream: string; sequence: bigint }>()
  const perLine = lists.map((list, i) => {
    const own = keys[Math.min(i, keys.length - 1)]!
    const seen = new Set<string>()
    let undecoded = 0
    const upTo = passes > 0 ? list.entries.length : submitted[i]!
    for (let j = 0; j < upTo; j++) {
      const key = own[list.entries[j]!]
      if (!key) {
        undecoded++
        continue
      }
      const id = `${key.stream}/${key.sequence}`
      seen.add(id)
      union.set(id, key)
    }
    return { distinct: seen.size, undecoded }
  })
  const streams: Record<string, { count: number; first: string; last: string }> = {}
  for (const { stream, sequence } of union.values()) {
    const s = (streams[stream] ??= { count: 0, first: String(sequence), last: String(sequence) })
    s.count++
    if (sequence < BigInt(s.first)) s.first = String(sequence)
    if (sequence > BigInt(s.last)) s.last = String(sequence)
  }
  const single = keys.length === 1 ? keys[0]! : []
  const withheldNumbers = new Set(withheld.map((k) => single[k]).filter((k) => k && !union.has(`${k.stream}/${k.sequence}`)).map((k) => `${k!.stream}/${k!.sequence}`))
  return { lines: perLine, union: union.size, streams, withheld: withheldNumbers.size }
}
