// ab-feed: the same packets on line A and line B over AF_XDP TX, impaired deterministically from
// --seed (plan.ts), and the truth as JSON at the end.
import { commonOptions, flagOption, intOption, optionTable, parseIPv4Option, parseIpPortOption, parseSeconds, runLoop, scaledIntOption, stringOption, valueOption } from '@kbx/cli'
import type { Command, OptionsOf, ToolContext } from '@kbx/cli'
import { feedLiveLine } from './feed-live.js'
import { UsageError } from '@kbx/errors'
import { interfaceInfo, multicastMac, parseIPv4, resolveNextHop, udpFrameTemplate, type InterfaceInfo } from '@kbx/net'
import { isMulticastIPv4 } from './channels.js'
import { Umem, XskSocket } from '@kbx/xsk'
import type { TxBatch } from '@kbx/xsk'
import { FeedFrameConfig, FeedLineWriter } from './feed-frames.js'
import { MAX_MOLD_SESSIONS, encodeFeedPayload, parseFormat, sequenceBits } from './format.js'
import {
  DEFAULT_PLAN_CHUNK,
  END_OF_SESSION,
  MAX_WITHHELD_KEPT,
  PlanWorkspace,
  ReusedArray,
  RunTruth,
  globalItem,
  makePlan,
  partialTruth,
  planChunks,
  withheldRanges,
  type LineImpairments,
  type Plan,
  type PlanOptions,
} from './plan.js'
import { openRecorder, recordOptions, sendLine, type FrameRecorder } from './record.js'
import { RerequestServer } from './rerequest-server.js'
import { replayOptions, runReplay } from './replay.js'

function parseProbability(name: string) {
  return (v: string): number => {
    const p = Number(v)
    if (!Number.isFinite(p) || p < 0 || p > 1) throw new UsageError(`${name} must be a probability from 0 to 1, not ${JSON.stringify(v)}`, { op: `parse ${name}` })
    return p
  }
}

function parsePair(name: string, what: string) {
  return (v: string): [number, number] => {
    const m = /^([0-9.]+):([0-9]+)$/.exec(v)
    const p = m ? Number(m[1]) : NaN
    if (!m || !(p >= 0 && p <= 1)) throw new UsageError(`${name} takes PROBABILITY:${what}, e.g. 0.01:8, not ${JSON.stringify(v)}`, { op: `parse ${name}` })
    return [p, Number(m[2])]
  }
}

/** ab-feed's options. */
export const feedOptions = optionTable({
  format: valueOption('--format <name>', 'optiq or moldudp64', parseFormat, { default: 'optiq' }),
  port: intOption('--port <n>', 'UDP destination port', { min: 1, max: 65535, default: 8080 }),
  dstA: valueOption('--dst-a <ip>', 'destination address on line A; a multicast group (224.0.0.0/4) is sent to its multicast MAC', parseIPv4Option('--dst-a'), { default: '10.0.1.2' }),
  dstB: valueOption('--dst-b <ip>', 'destination address on line B (or its multicast group)', parseIPv4Option('--dst-b'), { default: '10.0.2.2' }),
  seed: intOption('--seed <n>', 'seed of every random impairment', { min: 0, default: 1 }),
  count: scaledIntOption('--count <n>', 'sequence numbers per stream, 0 = no end (until --duration or a signal); planned in chunks (--plan-chunk): memory stays flat however long it runs', { min: 0, max: 2 ** 46, default: 100000 }),
  streams: intOption('--streams <n>', 'streams (optiq sessions 1000.., mold sessions S000000000..)', { min: 1, max: 4096, default: 1 }),
  startSeq: stringOption('--start-seq <n>', 'first sequence number (optiq 0..2^32−1, wraps at 2^32; moldudp64 0..2^64−1, 0 follows 2^64−1)', { default: '1' }),
  restartEvery: scaledIntOption('--restart-every <n>', 'every stream restarts after every n of its numbers: optiq numbering from --restart-seq again, moldudp64 a new session (after an end-of-session on both lines); 0 = never', { min: 0, default: 0 }),
  restartSeq: stringOption('--restart-seq <n>', 'first sequence number after a restart', { default: '1' }),
  planChunk: scaledIntOption('--plan-chunk <n>', 'numbers (all streams) planned at a time: memory stays bounded however long the run', { min: 1, max: 1 << 24, default: DEFAULT_PLAN_CHUNK }),
  rate: scaledIntOption('--rate <pps>', 'sequence numbers per second, all streams together (0: as fast as possible)', { default: 0 }),
  size: intOption('--size <bytes>', 'UDP payload bytes (at least the format header)', { min: 36, max: 1472, default: 36 }),
  lossA: valueOption('--loss-a <p>', 'random loss on line A', parseProbability('--loss-a'), { default: 0 }),
  lossB: valueOption('--loss-b <p>', 'random loss on line B', parseProbability('--loss-b'), { default: 0 }),
  burstA: valueOption('--burst-a <p:len>', 'loss bursts on line A: start probability and length', parsePair('--burst-a', 'LENGTH')),
  burstB: valueOption('--burst-b <p:len>', 'loss bursts on line B', parsePair('--burst-b', 'LENGTH')),
  dupA: valueOption('--dup-a <p>', 'packets sent twice on line A', parseProbability('--dup-a'), { default: 0 }),
  dupB: valueOption('--dup-b <p>', 'packets sent twice on line B', parseProbability('--dup-b'), { default: 0 }),
  reorderA: valueOption('--reorder-a <p:dist>', 'reordering on line A: probability and distance', parsePair('--reorder-a', 'DISTANCE')),
  reorderB: valueOption('--reorder-b <p:dist>', 'reordering on line B', parsePair('--reorder-b', 'DISTANCE')),
  delayB: intOption('--delay-b <packets>', 'line B lags line A by this many packets (negative: A lags)', { min: -1_000_000, max: 1_000_000, default: 0 }),
  alternate: intOption('--alternate <n>', 'alternating outages: blocks of n numbers carried by one line only, A and B taking turns', { min: 0, default: 0 }),
  gap: valueOption('--gap <p>', 'packets withheld from both lines (true gaps)', parseProbability('--gap'), { default: 0 }),
  serveRerequests: valueOption('--serve-rerequests <ip:port>', 'answer MoldUDP64 requests on this address (in the sending namespace) by unicast to the requester, withheld numbers included (moldudp64 only)', parseIpPortOption('--serve-rerequests')),
  history: scaledIntOption('--history <n>', 'numbers per stream the request server answers below the newest sent (rebuilt from their numbers: no copies kept)', { min: 1, max: 2 ** 40, default: 1_000_000 }),
  serveLinger: valueOption('--serve-linger <s>', 'with --serve-rerequests: keep answering this long after the last packet (a signal ends it)', parseSeconds('--serve-linger', { min: 0, max: 3600 }), { default: 3 }),
  withheldList: flagOption('--no-withheld-list', `leave the list of withheld ranges out of the end event (it holds the first ${MAX_WITHHELD_KEPT.toLocaleString('en-US')} withheld numbers)`),
  ...replayOptions,
  ...recordOptions,
  duration: commonOptions.duration,
  interval: commonOptions.interval,
  live: commonOptions.live,
})
export type FeedOptions = OptionsOf<typeof feedOptions>

/** The positional arguments (the options are feedOptions). */
export function buildFeedCommand(program: Command): void {
  program.argument('<line-a-src>', 'interface of line A').argument('<line-b-src>', 'interface of line B')
}

function impairments(loss: number, burst: [number, number] | undefined, dup: number, reorder: [number, number] | undefined): LineImpairments {
  return { loss, burstProb: burst?.[0] ?? 0, burstLength: burst?.[1] ?? 0, dup, reorder: reorder?.[0] ?? 0, reorderDistance: reorder?.[1] ?? 0 }
}

interface Line {
  name: 'A' | 'B'
  config: FeedFrameConfig
  socket: XskSocket
  batch: TxBatch
  writer: FeedLineWriter
  recorder?: FrameRecorder | undefined
}

export async function runFeed(ctx: ToolContext<FeedOptions>): Promise<void> {
  if (ctx.opts.replay && ctx.opts.serveRerequests) throw new UsageError('--serve-rerequests rebuilds the messages of a planned feed: not with --replay', { op: 'parse --serve-rerequests' })
  if (ctx.opts.replay) return runReplay(ctx)
  const o = ctx.opts
  const [ifA, ifB] = ctx.args as [string, string]
  const planOptions = planOptionsOf(o)
  const { startSeq, restartSeq } = planOptions
  const chunks = planChunks(o.count, o.streams, o.planChunk)
  if (o.serveRerequests && o.format !== 'moldudp64') throw new UsageError('--serve-rerequests answers MoldUDP64 requests: it needs --format moldudp64', { op: 'parse --serve-rerequests' })
  const lines = [openLine(ctx, o, planOptions, 'A', ifA, o.dstA), openLine(ctx, o, planOptions, 'B', ifB, o.dstB)]
  const server = o.serveRerequests ? await RerequestServer.listen(o.serveRerequests, lines[0]!.config, o.history) : undefined
  if (server) ctx.onCleanup(() => server.close())
  // One set of buffers for every chunk's plan and schedule: memory stays flat, nothing large is allocated per chunk.
  const workspace = new PlanWorkspace()
  const dueBuffers: [ReusedArray<Uint32Array>, ReusedArray<Uint32Array>] = [new ReusedArray((n) => new Uint32Array(n)), new ReusedArray((n) => new Uint32Array(n))]
  let chunk = 0
  let schedule = scheduleOf(makePlan(planOptions, chunks.at(0), workspace), o.delayB, dueBuffers)
  startChunk(lines, schedule)
  ctx.json.start({
    lineA: ifA,
    lineB: ifB,
    format: o.format,
    port: o.port,
    count: o.count,
    streams: o.streams,
    startSeq,
    ...(o.restartEvery > 0 ? { restartEvery: o.restartEvery, restartSeq } : {}),
    seed: o.seed,
    // Planned chunk by chunk (memory stays bounded): the first chunk's lines and withheld numbers.
    chunks: Number.isFinite(chunks.length) ? chunks.length : 'unbounded',
    planned: { A: schedule.plan.lineA.length, B: schedule.plan.lineB.length },
    withheld: schedule.plan.withheld.length,
  })

  const truth = new RunTruth(o.withheldList)
  const started = process.hrtime.bigint()
  const budget = (): number => (o.rate > 0 ? Math.floor((Number(process.hrtime.bigint() - started) / 1e9) * o.rate) : Number.MAX_SAFE_INTEGER)
  const sent = () => ({ A: lines[0]!.socket.statistics().txCompleted, B: lines[1]!.socket.statistics().txCompleted })
  const live = feedLiveLine(ctx)
  const stop = await runLoop(
    ctx,
    () => {
      const upTo = Math.min(schedule.total, budget() - schedule.plan.first * o.streams, schedule.step + 64)
      const caughtUpA = lines[0]!.writer.fill(lines[0]!.batch, upTo)
      const caughtUpB = lines[1]!.writer.fill(lines[1]!.batch, upTo)
      if (caughtUpA && caughtUpB) schedule.step = Math.max(schedule.step, upTo)
      if (server) server.published = globalItem(schedule.plan, Math.min(schedule.step, schedule.plan.items))
      for (const line of lines) if (line.batch.count > 0) sendLine(line)
      if (lines.every((l) => l.writer.done && l.batch.count === 0)) {
        // This chunk is all sent: its truth is the plan's; on to the next one.
        const plan = schedule.plan
        truth.add(plan, { A: plan.truthA, B: plan.truthB, withheld: plan.withheld, union: plan.items - plan.withheld.length, restarts: plan.restarts })
        if (server) server.published = globalItem(plan, plan.items)
        if (++chunk >= chunks.length) return false
        schedule = scheduleOf(makePlan(planOptions, chunks.at(chunk), workspace), o.delayB, dueBuffers)
        startChunk(lines, schedule)
        return
      }
      if (lines.every((l) => l.batch.count === l.batch.capacity)) lines[0]!.socket.wait({ tx: true }, 1)
    },
    {
      intervalSec: o.interval,
      durationSec: o.duration,
      onInterval: (tick) => {
        const s = sent()
        ctx.json.interval({ sent: s, memoryMB: memoryMB() })
        live(s, tick)
      },
    },
  )
  // Frames written but not submitted when the loop stopped early go back unsent: the truth below
  // covers exactly the submitted prefix of each line's list of the chunk it stopped in.
  const complete = chunk >= chunks.length
  const submitted = lines.map((l) => l.writer.next - l.batch.count)
  for (const line of lines) line.batch.release()
  for (const line of lines) line.socket.drain(2000)
  if (!complete) truth.add(schedule.plan, partialTruth(schedule.plan, submitted[0]!, submitted[1]!, planOptions))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (server && stop !== 'signal') await linger(ctx.signal, o.serveLinger)
  const counts = sent()
  ctx.end({
    stoppedBy: stop,
    complete,
    seconds,
    framesPerSecond: seconds > 0 ? Math.round(Number(counts.A + counts.B) / seconds) : 0,
    lines: {
      A: { sent: counts.A, ...truth.A },
      B: { sent: counts.B, ...truth.B },
    },
    // Distinct numbers sent on either line: what an arbitrator delivers.
    union: truth.union,
    // Restarts of all streams that were sent (optiq numbering restarts, mold new sessions).
    restarts: truth.restarts,
    withheld: {
      count: truth.withheldCount,
      ...(o.withheldList ? { ranges: withheldRanges(planOptions, truth.withheld), rangesComplete: truth.withheldComplete } : {}),
    },
    ...(server ? { rerequests: server.counters } : {}),
  })
}

/** Waits `seconds`, or until the signal aborts. */
async function linger(signal: AbortSignal, seconds: number): Promise<void> {
  if (signal.aborted || seconds <= 0) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, seconds * 1000)
    signal.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}

/** The process's memory, for a soak to tell the V8 heap from buffers outside it. */
function memoryMB(): Record<string, number> {
  const m = process.memoryUsage()
  const mb = (n: number) => Math.round((n / 2 ** 20) * 10) / 10
  return { rss: mb(m.rss), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) }
}

/** A line's AF_XDP TX socket (its own UMEM) and the writer of its frames towards its destination. */
function openLine(ctx: ToolContext<object>, o: FeedOptions, plan: PlanOptions & { restartSeq: bigint }, name: 'A' | 'B', iface: string, dst: string): Line {
  const src = interfaceInfo(iface)
  const hop = nextHopOf(dst, src)
  const umem = Umem.create({ frameCount: 4096 })
  ctx.onCleanup(() => umem.close())
  const socket = XskSocket.create({ umem, iface, queue: 0, rx: false, log: (m) => ctx.log.info(m) })
  ctx.onCleanup(() => socket.close())
  const template = udpFrameTemplate({
    srcMac: src.mac,
    dstMac: hop.nextHopMac,
    srcIp: hop.srcIp,
    dstIp: dst,
    srcPort: 40000,
    dstPort: o.port,
    payload: Buffer.alloc(encodeFeedPayload(o.format, 0, 0n, o.size).length),
  })
  const config = new FeedFrameConfig({ format: o.format, size: o.size, streams: o.streams, startSeq: plan.startSeq, restartSeq: plan.restartSeq, restartEvery: o.restartEvery, template })
  return { name, config, socket, batch: socket.txBatch(64), writer: new FeedLineWriter(config, umem), recorder: openRecorder(ctx, name === 'A' ? o.recordA : o.recordB) }
}

/**
 * Where a line's frames go: a multicast group's MAC (01:00:5e + its low 23 bits) from the line interface's
 * own address — no route or neighbour needed, as a venue's sender on its LAN — or the unicast next hop.
 */
function nextHopOf(dst: string, src: InterfaceInfo): { srcIp: string; nextHopMac: string } {
  if (!isMulticastIPv4(dst)) return resolveNextHop(dst, { iface: src.name })
  const srcIp = src.ipv4[0]
  if (srcIp === undefined)
    throw new UsageError(`${src.name} has no IPv4 address to send to ${dst} from`, { op: 'send to a multicast group', hint: `ip addr add ADDR/PREFIX dev ${src.name}` })
  return { srcIp, nextHopMac: multicastMac(parseIPv4(dst)) }
}

/** Points each line's writer at its list of the chunk's plan. */
function startChunk(lines: Line[], schedule: Schedule): void {
  for (const [i, line] of lines.entries()) {
    line.writer.start(i ? schedule.plan.lineB : schedule.plan.lineA, schedule.due[i as 0 | 1], globalItem(schedule.plan, 0), schedule.lags[i as 0 | 1])
  }
}

/** The plan's options from the command line; sequence numbers checked against the format's width. */
function planOptionsOf(o: FeedOptions): PlanOptions & { restartSeq: bigint } {
  const bits = sequenceBits(o.format)
  const sequenceOption = (name: string, v: string): bigint => {
    const n = /^\d+$/.test(v) ? BigInt(v) : -1n
    if (n < 0n || n >= 1n << BigInt(bits))
      throw new UsageError(`${name} must be an integer from 0 to 2^${bits} − 1 for ${o.format}, not ${JSON.stringify(v)}`, { op: `parse ${name}` })
    return n
  }
  const startSeq = sequenceOption('--start-seq', o.startSeq)
  const restartSeq = sequenceOption('--restart-seq', o.restartSeq)
  if (!Number.isSafeInteger(o.count * o.streams)) throw new UsageError(`--count × --streams must stay below 2^53`, { op: 'parse --count' })
  if (o.format === 'moldudp64' && o.restartEvery > 0 && o.count === 0)
    throw new UsageError(`--count 0 (no end) with moldudp64 --restart-every: a stream has at most ${MAX_MOLD_SESSIONS} sessions, give a --count`, { op: 'parse --count' })
  if (o.format === 'moldudp64' && o.restartEvery > 0 && Math.ceil(o.count / o.restartEvery) > MAX_MOLD_SESSIONS)
    throw new UsageError(`--restart-every ${o.restartEvery} gives more than ${MAX_MOLD_SESSIONS} sessions per stream`, { op: 'parse --restart-every' })
  return {
    format: o.format,
    seed: o.seed,
    count: o.count,
    streams: o.streams,
    startSeq,
    restartEvery: o.restartEvery,
    restartSeq,
    gapProb: o.gap,
    a: impairments(o.lossA, o.burstA, o.dupA, o.reorderA),
    b: impairments(o.lossB, o.burstB, o.dupB, o.reorderB),
    delayB: o.delayB,
    alternate: o.alternate,
  }
}

interface Schedule {
  plan: Plan
  due: [Uint32Array, Uint32Array]
  lags: [number, number]
  /** Steps of this chunk (items, streams interleaved, plus the lag of the later line). */
  total: number
  step: number
}

/**
 * The schedule of a chunk runs on its plan items (sequence numbers, streams interleaved): step k sends what
 * each line carries of item k (line B: of item k − delayB), so a line's losses leave silence rather than
 * pull its later packets forward. A reordered packet goes out at the step of the latest item before it in
 * its line's list (due: the running maximum).
 */
function scheduleOf(plan: Plan, delayB: number, buffers: [ReusedArray<Uint32Array>, ReusedArray<Uint32Array>]): Schedule {
  const dueOf = (list: Uint32Array, buffer: ReusedArray<Uint32Array>) => {
    const due = buffer.zeroed(list.length)
    for (let i = 0, max = 0; i < list.length; i++) due[i] = max = Math.max(max, list[i]! & ~END_OF_SESSION)
    return due
  }
  const due: [Uint32Array, Uint32Array] = [dueOf(plan.lineA, buffers[0]), dueOf(plan.lineB, buffers[1])]
  const lags: [number, number] = [Math.max(0, -delayB), Math.max(0, delayB)]
  const total = Math.max(...due.map((d, i) => (d.length ? d[d.length - 1]! + lags[i]! + 1 : 0)))
  return { plan, due, lags, total, step: 0 }
}
