// ab-feed: the same packets on line A and line B over AF_XDP TX, impaired deterministically from
// --seed (plan.ts), and the truth as JSON at the end.
import { addCommonOptions, parseIPv4Option, parseIntOption, parseScaledInt, runLoop } from '@kbx/cli'
import type { ToolContext } from '@kbx/cli'
import type { Command } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { interfaceInfo, resolveNextHop, udpFrameTemplate } from '@kbx/net'
import { Umem, XskSocket } from '@kbx/xsk'
import type { TxBatch } from '@kbx/xsk'
import { encodeFeedPayload, parseFormat, type FeedFormat } from './format.js'
import { itemSequence, makePlan, withheldRanges, type LineImpairments, type PlanOptions } from './plan.js'

export interface FeedOptions {
  format: FeedFormat
  port: number
  dstA: string
  dstB: string
  seed: number
  count: number
  streams: number
  startSeq: string
  rate: number
  size: number
  lossA: number
  lossB: number
  burstA?: [number, number]
  burstB?: [number, number]
  dupA: number
  dupB: number
  reorderA?: [number, number]
  reorderB?: [number, number]
  delayB: number
  gap: number
  duration: number
  interval: number
  withheldList: boolean
}

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

export function buildFeedCommand(program: Command): void {
  program
    .argument('<line-a-src>', 'interface of line A')
    .argument('<line-b-src>', 'interface of line B')
    .option('--format <name>', 'optiq or moldudp64', parseFormat, 'optiq')
    .option('--port <n>', 'UDP destination port', parseIntOption('--port', { min: 1, max: 65535 }), 8080)
    .option('--dst-a <ip>', 'destination address on line A', parseIPv4Option('--dst-a'), '10.0.1.2')
    .option('--dst-b <ip>', 'destination address on line B', parseIPv4Option('--dst-b'), '10.0.2.2')
    .option('--seed <n>', 'seed of every random impairment', parseIntOption('--seed', { min: 0 }), 1)
    .option('--count <n>', 'sequence numbers per stream', parseScaledInt('--count', { min: 1, max: 50_000_000 }), 100000)
    .option('--streams <n>', 'streams (optiq sessions 1000.., mold sessions S000000000..)', parseIntOption('--streams', { min: 1, max: 1000 }), 1)
    .option('--start-seq <n>', 'first sequence number (wraps at 2^32 for optiq)', '1')
    .option('--rate <pps>', 'packets per second per line (0: as fast as possible)', parseScaledInt('--rate'), 0)
    .option('--size <bytes>', 'UDP payload bytes (at least the format header)', parseIntOption('--size', { min: 36, max: 1472 }), 36)
    .option('--loss-a <p>', 'random loss on line A', parseProbability('--loss-a'), 0)
    .option('--loss-b <p>', 'random loss on line B', parseProbability('--loss-b'), 0)
    .option('--burst-a <p:len>', 'loss bursts on line A: start probability and length', parsePair('--burst-a', 'LENGTH'))
    .option('--burst-b <p:len>', 'loss bursts on line B', parsePair('--burst-b', 'LENGTH'))
    .option('--dup-a <p>', 'packets sent twice on line A', parseProbability('--dup-a'), 0)
    .option('--dup-b <p>', 'packets sent twice on line B', parseProbability('--dup-b'), 0)
    .option('--reorder-a <p:dist>', 'reordering on line A: probability and distance', parsePair('--reorder-a', 'DISTANCE'))
    .option('--reorder-b <p:dist>', 'reordering on line B', parsePair('--reorder-b', 'DISTANCE'))
    .option('--delay-b <packets>', 'line B lags line A by this many packets (negative: A lags)', parseIntOption('--delay-b', { min: -1_000_000, max: 1_000_000 }), 0)
    .option('--gap <p>', 'packets withheld from both lines (true gaps)', parseProbability('--gap'), 0)
    .option('--no-withheld-list', 'leave the list of withheld ranges out of the end event')
  addCommonOptions(program, ['duration', 'interval'])
}

function impairments(loss: number, burst: [number, number] | undefined, dup: number, reorder: [number, number] | undefined): LineImpairments {
  return { loss, burstProb: burst?.[0] ?? 0, burstLength: burst?.[1] ?? 0, dup, reorder: reorder?.[0] ?? 0, reorderDistance: reorder?.[1] ?? 0 }
}

interface Line {
  name: 'A' | 'B'
  socket: XskSocket
  batch: TxBatch
  list: Uint32Array
  next: number
  template: ReturnType<typeof udpFrameTemplate>
}

export async function runFeed(ctx: ToolContext): Promise<void> {
  const o = ctx.opts as unknown as FeedOptions
  const [ifA, ifB] = ctx.args as [string, string]
  let startSeq: bigint
  try {
    startSeq = BigInt(o.startSeq)
  } catch {
    throw new UsageError(`--start-seq must be an integer, not ${JSON.stringify(o.startSeq)}`, { op: 'parse --start-seq' })
  }
  const planOptions: PlanOptions = {
    format: o.format,
    seed: o.seed,
    count: o.count,
    streams: o.streams,
    startSeq,
    gapProb: o.gap,
    a: impairments(o.lossA, o.burstA, o.dupA, o.reorderA),
    b: impairments(o.lossB, o.burstB, o.dupB, o.reorderB),
    delayB: o.delayB,
  }
  const plan = makePlan(planOptions)
  const payloads = new Map<number, Buffer>()
  const payloadOf = (k: number): Buffer => {
    const { stream, sequence } = itemSequence(planOptions, k)
    let p = payloads.get(stream)
    if (!p) payloads.set(stream, (p = encodeFeedPayload(o.format, stream, sequence, o.size)))
    const fresh = encodeFeedPayload(o.format, stream, sequence, o.size)
    fresh.copy(p)
    return p
  }
  const open = (name: 'A' | 'B', iface: string, dst: string, list: Uint32Array): Line => {
    const hop = resolveNextHop(dst, { iface })
    const src = interfaceInfo(iface)
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
    return { name, socket, batch: socket.txBatch(64), list, next: 0, template }
  }
  const lines = [open('A', ifA, o.dstA, plan.lineA), open('B', ifB, o.dstB, plan.lineB)]
  ctx.json.start({ lineA: ifA, lineB: ifB, format: o.format, port: o.port, count: o.count, streams: o.streams, startSeq, seed: o.seed, planned: { A: plan.lineA.length, B: plan.lineB.length }, withheld: plan.withheld.length })

  const started = process.hrtime.bigint()
  const budget = (): number => (o.rate > 0 ? Math.floor((Number(process.hrtime.bigint() - started) / 1e9) * o.rate) : Number.MAX_SAFE_INTEGER)
  // Step k of the schedule sends A's k-th and B's (k - delayB)-th packet.
  const lagA = Math.max(0, -o.delayB)
  const lagB = Math.max(0, o.delayB)
  let step = 0
  const total = Math.max(plan.lineA.length + lagA, plan.lineB.length + lagB)
  const fill = (line: Line, lag: number, upTo: number) => {
    const limit = Math.min(line.list.length, upTo - lag)
    const want = Math.max(0, Math.min(line.batch.capacity - line.batch.count, limit - line.next))
    const first = line.batch.count
    const got = want > 0 ? line.batch.allocate(want) : 0
    for (let i = first; i < first + got; i++) {
      line.batch.setLength(i, line.template.write(line.batch.frame(i), 0, payloadOf(line.list[line.next++]!)))
    }
  }
  const sent = () => ({ A: lines[0]!.socket.statistics().txCompleted, B: lines[1]!.socket.statistics().txCompleted })
  const stop = await runLoop(
    ctx,
    () => {
      const upTo = Math.min(total, budget(), step + 64)
      fill(lines[0]!, lagA, upTo)
      fill(lines[1]!, lagB, upTo)
      step = Math.max(step, Math.min(upTo, Math.max(lines[0]!.next + lagA, lines[1]!.next + lagB)))
      for (const line of lines) if (line.batch.count > 0) line.socket.send(line.batch)
      const done = lines.every((l) => l.next >= l.list.length && l.batch.count === 0)
      if (done) return false
      if (lines.every((l) => l.batch.count === l.batch.capacity)) lines[0]!.socket.wait({ tx: true }, 1)
    },
    {
      intervalSec: o.interval,
      durationSec: o.duration,
      onInterval: () => ctx.json.interval({ sent: sent() }),
    },
  )
  for (const line of lines) line.socket.drain(2000)
  const counts = sent()
  const complete = lines.every((l) => l.next >= l.list.length)
  ctx.end({
    stoppedBy: stop,
    complete,
    lines: {
      A: { sent: counts.A, ...plan.truthA },
      B: { sent: counts.B, ...plan.truthB },
    },
    withheld: {
      count: plan.withheld.length,
      ...(o.withheldList ? { ranges: withheldRanges(planOptions, plan.withheld) } : {}),
    },
  })
}
