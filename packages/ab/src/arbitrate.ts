// ab-arbitrate: XDP arbitration of two feed lines, AF_XDP delivery, gaps and line-quality stats.
import { commonOptions, flagOption, intOption, latencyFileOptions, optionTable, parseChoice, parseIntOption, parseIpPortOption, runLoop, stringOption, valueOption } from '@kbx/cli'
import type { Command, OptionsOf, ToolContext } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { PcapWriter, interfaceInfo } from '@kbx/net'
import { LatencyRecording } from '@kbx/report'
import { type BucketHistogram, RateMeter, formatLiveLine, summarizeLatency } from '@kbx/stats'
import { Arbitrator, type DeliveredBatch, type Gap, type RecoveryOptions, type StreamEvent } from './arbitrator.js'
import { channelOptions, checkChannelFormats, formatGroupSpec, resolveChannels, type ChannelOptions } from './channels.js'
import { readFeeds } from './feeds.js'
import { channelReport } from './group-table.js'
import { GroupMemberships, describeMemberships, membershipsOf } from './multicast.js'
import { parseFormat, type FeedFormat } from './format.js'
import { checkOutputs, collectOutput, describeOutput, type OutputSpec } from './outputs.js'
import type { KbxAbLimitsValue } from './native.js'
import {
  abLimits,
  skewSince,
  summarizeSkew,
  validateMaxStreams,
  validateResetDistance,
  validateSkewSample,
  validateWindow,
  type Skew,
} from './program.js'

function parsePortRange(v: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(v)
  const lo = m ? Number(m[1]) : NaN
  const hi = m ? Number(m[2] ?? m[1]) : NaN
  if (!m || lo < 1 || hi > 65535 || lo > hi) throw new UsageError(`--port takes PORT or FIRST-LAST (1..65535), not ${JSON.stringify(v)}`, { op: 'parse --port' })
  return [lo, hi]
}

/** The limits for help texts; undefined when libkbx.so cannot be loaded (a run then fails with the hint to build it). */
function limitsForHelp(): KbxAbLimitsValue | undefined {
  try {
    return abLimits()
  } catch {
    return undefined
  }
}

/** ", min..max, default d" of the native limits, for a help text. */
function range(limits: KbxAbLimitsValue | undefined, min: keyof KbxAbLimitsValue | undefined, max: keyof KbxAbLimitsValue, def: keyof KbxAbLimitsValue): string {
  if (!limits) return ''
  return `, ${min === undefined ? 'up to ' : `${limits[min]}..`}${limits[max]}, default ${limits[def]}`
}

/** ab-arbitrate's options; the help texts carry the native limits (read from libkbx.so when it loads). */
export function arbitrateOptions() {
  const limits = limitsForHelp()
  return optionTable({
    format: valueOption('--format <name>', 'optiq or moldudp64', parseFormat, { default: 'optiq' }),
    port: valueOption('--port <port[-last]>', 'UDP destination port(s) of the feed', parsePortRange, { default: [8080, 8080], defaultText: '8080' }),
    window: valueOption('--window <n>', `sequence numbers of reordering tolerated (power of two${range(limits, 'min_window', 'max_window', 'default_window')})`, (v: string) => validateWindow(parseIntOption('--window')(v))),
    maxStreams: valueOption('--max-streams <n>', `streams the stream table holds (~64 KiB of kernel memory per stream seen${range(limits, undefined, 'max_streams', 'default_streams')})`, (v: string) => validateMaxStreams(parseIntOption('--max-streams')(v))),
    resetDistance: stringOption('--reset-distance <n>', `a number this far from the newest, either way, restarts its stream (from 2 × window${range(limits, undefined, 'max_reset_distance', 'default_reset_distance')})`),
    skewSample: valueOption('--skew-sample <n>', `measure A/B skew on one sequence number in n (power of two, 1 = all${range(limits, undefined, 'max_skew_sample', 'default_skew_sample')})`, (v: string) => validateSkewSample(parseIntOption('--skew-sample')(v))),
    out: valueOption<OutputSpec[]>('--out <dest>', 'where delivered messages go (repeatable): udp:IP:PORT (the payloads, batched with sendmmsg; a multicast group needs --out-iface), shm:NAME[,slots=N][,slot-size=BYTES] (a lock-free ring /dev/shm/NAME, see native/include/kbx_ab_shm.h), pcap:FILE (frames, ns timestamps)', collectOutput),
    outIface: stringOption('--out-iface <iface>', 'the interface udp outputs to multicast groups leave through'),
    pcap: stringOption('--pcap <file>', 'write every delivered packet here (pcap, ns timestamps): --out pcap:FILE'),
    pin: stringOption('--pin <run>', 'pin the XDP program\'s maps under /sys/fs/bpf/kbx/ab/<run> to inspect them after the run (programs still detach at exit)'),
    ...channelOptions,
    rerequest: valueOption('--rerequest <ip:port>', 'MoldUDP64 request server: holes both lines missed are requested from it and the answers delivered (moldudp64 only)', parseIpPortOption('--rerequest')),
    gapWaitUs: intOption('--gap-wait-us <us>', 'with --rerequest: a hole open this long is requested (sooner when the window passes it; 0: only then)', { min: 0, max: 10_000_000, default: 2000 }),
    rerequestMax: intOption('--rerequest-max <n>', 'messages per request (CME caps a replay request at 2000)', { min: 1, max: 65534, default: 2000 }),
    rerequestRetries: intOption('--rerequest-retries <n>', 'requests sent again for what is still missing before a gap is lost', { min: 0, max: 16, default: 4 }),
    rerequestTimeoutUs: intOption('--rerequest-timeout-us <us>', 'the first retry after this, doubled for each further one', { min: 100, max: 10_000_000, default: 20_000 }),
    order: valueOption('--order <how>', 'arrival: each first copy delivered at once; sequence: per stream strictly in sequence, a packet after a hole held until the hole is filled (other line, recovery) or --hold-us passed', parseChoice('--order', ['arrival', 'sequence'] as const), { default: 'arrival' }),
    holdUs: intOption('--hold-us <us>', 'with --order sequence: longest wait for a hole before it is given up on (more than the recovery time, to wait for recovery)', { min: 1, max: 60_000_000, default: 200_000 }),
    holdMax: intOption('--hold-max <n>', 'with --order sequence: packets held at most (2 KiB each); when full, the arriving stream\'s hole is given up on (counted)', { min: 1, max: 1 << 24, default: 8192 }),
    busyPoll: flagOption('--busy-poll', 'spin on the AF_XDP RX rings instead of sleeping in poll() when idle: one core at 100%, and the kernel never has to wake the loop (in copy mode that wake-up costs the sending CPU; not with --rerequest)'),
    spinUs: intOption('--spin-us <us>', 'with nothing to take, spin on the AF_XDP RX rings this long before sleeping in poll(): a loop that keeps up with a busy feed is then not woken by the kernel (for a core of its own: on a shared one the scheduler takes a spinner off the CPU for longer)', { min: 0, max: 2000, default: 0 }),
    xdpArrival: flagOption('--xdp-arrival', 'the XDP program stamps every first copy (~30 ns each): outputs carry that XDP arrival time instead of the batch\'s, and the end event reports XDP arrival → RX ring taken (arrival.toRingUs)'),
    mode: commonOptions.mode,
    queue: intOption('--queue <n>', 'bind only this rx queue of each line (default: every queue), so another AF_XDP tool can own the others', { min: 0, max: 1023 }),
    duration: commonOptions.duration,
    interval: commonOptions.interval,
    live: commonOptions.live,
    ...latencyFileOptions,
  })
}
export type ArbitrateOptions = OptionsOf<ReturnType<typeof arbitrateOptions>>

/** The positional arguments (the options are arbitrateOptions). */
export function buildArbitrateCommand(program: Command): void {
  program.argument('[line-a]', 'interface of line A', 'vethA_dst').argument('[line-b]', 'interface of line B', 'vethB_dst')
}

/** --reset-distance (default from ab_arbitrate.h), checked against the window: a usage error before anything is attached. */
function parseResetDistance(value: string | undefined, window: number): bigint {
  if (value === undefined) return validateResetDistance(abLimits().default_reset_distance, window)
  if (!/^\d+$/.test(value)) throw new UsageError(`--reset-distance must be an integer, not ${JSON.stringify(value)}`, { op: 'parse --reset-distance' })
  return validateResetDistance(BigInt(value), window)
}

/** Restart and session-end events, then gap events, as JSON lines. */
function emitStreamEvents(ctx: ToolContext<object>, gaps: Gap[], events: StreamEvent[]): void {
  for (const e of events) {
    if (e.kind === 'restart') {
      ctx.json.emit('restart', { stream: e.stream, kind: 'sequence', lastBefore: e.from, firstAfter: e.to })
      ctx.log.info(`stream ${e.stream} restarted: ${e.from} → ${e.to}`)
    } else if (e.kind === 'newSession') {
      ctx.json.emit('restart', { stream: e.stream, kind: 'session', previous: e.previous, previousNext: e.from, firstAfter: e.to })
      ctx.log.info(`session ${e.previous} ended; ${e.stream} follows it`)
    } else if (e.kind === 'sessionEnd') {
      ctx.json.emit('sessionEnd', { stream: e.stream, next: e.next })
    }
  }
  for (const g of gaps) {
    const outcome = g.outcome === undefined ? {} : { outcome: g.outcome, ...(g.recoveryUs === undefined ? {} : { recoveryUs: g.recoveryUs }) }
    ctx.json.emit('gap', { stream: g.stream, from: g.from, to: g.to, count: g.count, ...outcome })
  }
}

/** Every counter of a run: the receive loop's, the XDP program's, the sockets' and the skew (since `since`, when given). */
function countersSnapshot(arb: Arbitrator, lineA: string, since: Skew | undefined, o: ArbitrateOptions, outputs: OutputSpec[], pcapCounters: (file: string) => object) {
  const native = arb.outputCounters()
  const rx = arb.receiveCounters()
  const x = arb.xdpCounters()
  const c = (name: string) => x[name] ?? 0n
  const skew = arb.skew()
  const xsk = { rxDropped: 0n, rxRingFull: 0n, fillRingEmpty: 0n, rxInvalidDescs: 0n }
  // Frames a line's sockets dropped (no fill frame, ring full): won in XDP, never delivered.
  const socketDropped = { A: 0n, B: 0n }
  for (const { iface, statistics: s } of arb.socketStatistics()) {
    socketDropped[iface === lineA ? 'A' : 'B'] += s.rxDropped + s.rxRingFull
    xsk.rxDropped += s.rxDropped
    xsk.rxRingFull += s.rxRingFull
    xsk.fillRingEmpty += s.fillRingEmpty
    xsk.rxInvalidDescs += s.rxInvalidDescs
  }
  const data = {
    delivered: rx.delivered,
    lines: {
      A: { won: c('won_a'), delivered: rx.delivered_a, duplicatesDropped: c('dup_a_after_a') + c('dup_a_after_b'), filledForB: positive(c('won_a') - c('dup_b_after_a')), stale: c('stale_a'), socketDropped: socketDropped.A },
      B: { won: c('won_b'), delivered: rx.delivered_b, duplicatesDropped: c('dup_b_after_a') + c('dup_b_after_b'), filledForA: positive(c('won_b') - c('dup_a_after_b')), stale: c('stale_b'), socketDropped: socketDropped.B },
    },
    stale: c('stale_a') + c('stale_b'),
    gaps: rx.gaps,
    lost: rx.gap_messages,
    lateFills: rx.late_fills,
    afterGap: rx.after_gap,
    duplicatesDelivered: rx.repeated,
    resets: c('resets'),
    // Restart events: sequence restarts of a stream and new sessions that followed an ended one.
    restarts: rx.resets + rx.new_sessions,
    sessionsEnded: rx.sessions_ended,
    // Ended sessions whose end came on both lines: their holes reported, removed from both stream tables.
    sessionsClosed: rx.sessions_closed,
    // Copies of a numbering before its restart that arrived after it (placed in the old epoch).
    lateOldEpoch: rx.old_epoch,
    streams: rx.streams,
    // First copies of streams the XDP table (--max-streams) had no room for: passed to the kernel,
    // neither arbitrated nor delivered; untracked: delivered packets gap tracking had no room for.
    streamTableFull: c('stream_table_full'),
    untracked: rx.untracked,
    skewUs: {
      ...summarizeSkew(since ? skewSince(skew, since) : skew),
      maxBLateUs: skew.bLate.maxValueNs / 1000,
      maxALateUs: skew.aLate.maxValueNs / 1000,
    },
    // With --rerequest: gaps whose every message was recovered, and what recovery did.
    ...(arb.recovering
      ? {
          recovered: rx.gaps_recovered,
          recovery: {
            recovered: rx.gaps_recovered,
            lost: rx.gaps_unrecovered,
            pending: rx.recovery_pending,
            messagesRecovered: rx.recovered_messages,
            requests: rx.recovery_requests,
            answers: rx.recovery_answers,
            duplicateMessages: rx.recovery_duplicates,
            refused: rx.recovery_refused,
            malformedAnswers: rx.answers_malformed,
            holesExpired: rx.holes_expired,
            lateLineFills: rx.late_line_fills,
            lateLineDropped: rx.late_line_dropped,
          },
        }
      : {}),
    ...(o.order === 'sequence'
      ? {
          order: {
            mode: 'sequence',
            held: rx.held,
            heldNow: rx.held_now,
            holesSkipped: rx.holes_skipped,
            skippedMessages: rx.skipped_messages,
            late: rx.order_late,
            holdOverflow: rx.hold_overflow,
            unordered: rx.order_unordered,
            heldUs: summarizeLatency(arb.holdTimes()),
          },
        }
      : {}),
    ...(o.xdpArrival === true ? { arrival: { stamped: rx.arrival_stamped, unstamped: rx.arrival_unstamped, toRingUs: summarizeLatency(arb.arrivalDelays()) } } : {}),
    xsk,
    xdp: { passed: c('passed'), malformed: c('malformed'), heartbeat: c('heartbeat'), endOfSession: c('end_of_session'), wonNoSocket: c('won_nosocket'), claimRetries: c('claim_retries') },
    ...(arb.channels.length ? { channels: arb.channelCounters().map((n, i) => channelReport(arb.channels[i]!, n)) } : {}),
    ...(outputs.length ? { outputs: outputs.map((out) => (out.kind === 'pcap' ? pcapCounters(out.file) : native.shift()!)) } : {}),
  }
  return { data, skew }
}

/** --rerequest and its settings; a usage error for a feed that is not moldudp64. */
function recoveryOf(o: ArbitrateOptions): RecoveryOptions | undefined {
  if (!o.rerequest) return undefined
  if (o.format !== 'moldudp64') throw new UsageError(`--rerequest sends MoldUDP64 requests: it needs --format moldudp64`, { op: 'parse --rerequest' })
  return { server: o.rerequest, maxRequest: o.rerequestMax, retries: o.rerequestRetries, waitUs: o.gapWaitUs, timeoutUs: o.rerequestTimeoutUs }
}

/** At the end: the gaps still waiting for answers get them, or run out of retries (bounded by the backoff). */
async function settleRecovery(arb: Arbitrator, r: RecoveryOptions, onBatch: (batch: DeliveredBatch) => void): Promise<void> {
  const lastRetryUs = r.waitUs + r.timeoutUs * (2 ** (r.retries + 1) - 1)
  const deadline = Date.now() + lastRetryUs / 1000 + 1000
  while (arb.receiveCounters().recovery_pending > 0n && Date.now() < deadline) {
    onBatch(arb.poll(2))
    await new Promise((resolve) => setImmediate(resolve))
  }
  onBatch(arb.poll(0))
}

/** At the end: what sequence order still holds is delivered, its holes given up on. */
async function releaseHeld(arb: Arbitrator, onBatch: (batch: DeliveredBatch) => void): Promise<void> {
  arb.releaseHeld()
  for (let i = 0; i < 1000 && arb.receiveCounters().held_now > 0n; i++) {
    onBatch(arb.poll(0))
    await new Promise((resolve) => setImmediate(resolve))
  }
}

function positive(n: bigint): bigint {
  return n > 0n ? n : 0n
}

/** At the end: what is still queued, the holes below each stream's highest number, then recovery's and the hold's last answers. */
async function drainAtEnd(arb: Arbitrator, o: ArbitrateOptions, recovery: RecoveryOptions | undefined, onBatch: (batch: DeliveredBatch) => void): Promise<void> {
  for (let i = 0; i < 64; i++) {
    const batch = arb.poll(0)
    onBatch(batch)
    if (batch.gaps.length === 0 && batch.events.length === 0 && batch.packets.length === 0 && i > 2) break
  }
  onBatch({ ...arb.flush(), packets: [] })
  if (recovery) await settleRecovery(arb, recovery, onBatch)
  if (o.order === 'sequence') await releaseHeld(arb, onBatch)
}

/** --pcap (or --out pcap:FILE): the delivered frames the receive loop copied out, and what was written. */
class PcapOutput {
  private readonly writer: PcapWriter
  private messages = 0
  private bytes = 0

  constructor(readonly file: string) {
    this.writer = PcapWriter.open(file, { nanosecond: true })
  }

  write(packets: { frame: Buffer; realtimeNs: bigint }[]): void {
    for (const p of packets) {
      this.writer.write(p.frame, p.realtimeNs)
      this.bytes += p.frame.length
    }
    this.messages += packets.length
  }

  counters(): object {
    return { out: `pcap:${this.file}`, messages: this.messages, bytes: this.bytes, errors: 0 }
  }

  close(): void {
    this.writer.close()
  }
}

/** --hgrm/--hlog/--plot: the skew's two sides (B after A first: the untagged series) and, in sequence order, the hold times. */
function openRecording(ctx: ToolContext<ArbitrateOptions>): LatencyRecording {
  return LatencyRecording.open(ctx, {
    series: [
      { name: 'skew-b-late', label: 'B after A' },
      { name: 'skew-a-late', label: 'A after B' },
      ...(ctx.opts.order === 'sequence' ? [{ name: 'hold', label: 'hold time' }] : []),
    ],
    rateUnit: 'delivered packets/s',
    latencyLabel: 'A/B skew, hold time',
  })
}

/** Hands the recording what the skew and the hold times gained since the last call. */
function recordIntervals(arb: Arbitrator, recording: LatencyRecording, sequence: boolean): (skew: Skew, ratePerSec?: number) => void {
  let lastSkew: Skew | undefined
  let lastHold: BucketHistogram | undefined
  return (skew, ratePerSec) => {
    if (!recording.active) return
    const d = lastSkew ? skewSince(skew, lastSkew) : skew
    const hold = sequence ? arb.holdTimes() : undefined
    recording.interval({ 'skew-b-late': d.bLate, 'skew-a-late': d.aLate, ...(hold ? { hold: lastHold ? hold.since(lastHold) : hold } : {}) }, ratePerSec)
    lastSkew = skew
    lastHold = hold
  }
}

export async function runArbitrate(ctx: ToolContext<ArbitrateOptions>): Promise<void> {
  const o = ctx.opts
  const [lineA, lineB] = ctx.args as [string, string]
  const limits = abLimits()
  const window = o.window ?? limits.default_window
  const skewSample = o.skewSample ?? limits.default_skew_sample
  const maxStreams = o.maxStreams ?? limits.default_streams
  const resetDistance = parseResetDistance(o.resetDistance, window)
  // Multicast channels and their memberships are checked before anything is attached (usage errors, exit 2).
  const channels = resolveChannels(o, readFeeds)
  checkChannelFormats(channels, o.format)
  const memberships = channels.length ? membershipsOf(channels, interfaceInfo(lineA), interfaceInfo(lineB)) : []
  const recovery = recoveryOf(o)
  if (o.busyPoll === true && recovery) throw new UsageError('--busy-poll: not with --rerequest (recovery answers arrive on a kernel socket the loop waits on)', { op: 'parse --busy-poll' })
  const outputs: OutputSpec[] = [...(o.out ?? []), ...(o.pcap !== undefined ? [{ kind: 'pcap' as const, file: o.pcap }] : [])]
  checkOutputs(outputs, o.outIface)
  if (o.outIface !== undefined) interfaceInfo(o.outIface)
  const recording = openRecording(ctx)
  const pcapFile = outputs.find((out) => out.kind === 'pcap')?.file
  const pcap = pcapFile !== undefined ? new PcapOutput(pcapFile) : undefined
  if (pcap) ctx.onCleanup(() => pcap.close())
  const arb = Arbitrator.open({
    lineA,
    lineB,
    format: o.format,
    portMin: o.port[0],
    portMax: o.port[1],
    window,
    maxStreams,
    resetDistance,
    skewSample,
    mode: o.mode,
    ...(o.queue !== undefined ? { queue: o.queue } : {}),
    copyFrames: pcap !== undefined,
    log: (m) => ctx.log.info(m),
    ...(o.pin !== undefined ? { pin: o.pin } : {}),
    ...(channels.length ? { channels } : {}),
    outputs,
    ...(o.outIface !== undefined ? { outIface: o.outIface } : {}),
    ...(recovery ? { recovery } : {}),
    ...(o.order === 'sequence' ? { order: { holdUs: o.holdUs, holdMax: o.holdMax } } : {}),
    busyPoll: o.busyPoll === true,
    spinUs: o.spinUs,
    xdpArrival: o.xdpArrival === true,
  })
  ctx.onCleanup(() => arb.close())
  // Joined once XDP steers the groups, left first at exit (cleanups run newest first).
  const joined = GroupMemberships.join(memberships, ctx.log)
  ctx.onCleanup(() => joined.leave())
  ctx.json.start({
    lineA,
    lineB,
    format: o.format,
    ...(channels.length
      ? { channels: channels.map((c) => ({ name: c.name, A: formatGroupSpec(c.a), B: formatGroupSpec(c.b) })), memberships: describeMemberships(joined.joined) }
      : { ports: o.port }),
    window,
    maxStreams,
    resetDistance,
    skewSample,
    sockets: arb.sockets.map((s) => ({ iface: s.iface, queue: s.queue, zeroCopy: s.zeroCopy })),
    xdp: arb.links.map((l) => ({ ifindex: l.ifindex, mode: l.mode, linkId: l.id })),
    ...(o.pin !== undefined ? { pinnedMaps: arb.pinnedMaps } : {}),
    ...(outputs.length ? { outputs: outputs.map(describeOutput), ...(o.outIface !== undefined ? { outIface: o.outIface } : {}) } : {}),
    ...(recovery ? { rerequest: recovery } : {}),
    order: o.order === 'sequence' ? { mode: 'sequence', holdUs: o.holdUs, holdMax: o.holdMax } : { mode: 'arrival' },
    busyPoll: o.busyPoll === true,
    spinUs: o.busyPoll === true ? null : o.spinUs,
    xdpArrival: o.xdpArrival === true,
  })

  const onBatch = (batch: DeliveredBatch) => {
    emitStreamEvents(ctx, batch.gaps, batch.events)
    pcap?.write(batch.packets)
  }
  const meter = new RateMeter<{ delivered: bigint }>({ delivered: 0n })
  let lastSkew: Skew | undefined
  let warnedFull = false
  const snapshot = (interval: boolean) => {
    const { data, skew } = countersSnapshot(arb, lineA, interval ? lastSkew : undefined, o, outputs, () => pcap!.counters())
    lastSkew = skew
    if (!warnedFull && (data.streamTableFull > 0n || data.untracked > 0n)) {
      warnedFull = true
      ctx.log.warn(`more streams than the stream table holds (${maxStreams}): ${data.streamTableFull} first copies passed to the kernel unarbitrated, ${data.untracked} packets untracked`)
    }
    return data
  }

  const record = recordIntervals(arb, recording, o.order === 'sequence')
  recording.begin()
  const stop = await runLoop(
    ctx,
    () => onBatch(arb.poll(2)),
    {
      intervalSec: o.interval,
      durationSec: o.duration,
      onInterval: (tick) => {
        const s = snapshot(true)
        const r = meter.sample({ delivered: s.delivered })
        ctx.json.interval({ ...s, pps: Math.round(r.rates.delivered), umem: arb.umemAccounting() })
        record(lastSkew!, r.rates.delivered)
        if (ctx.status.enabled) {
          const skew = summarizeSkew(lastSkew!)
          const latency = skew.samples > 0 ? { label: 'skew', count: skew.samples, p50: skew.p50Us!, p99: skew.p99Us! } : undefined
          ctx.status.update(formatLiveLine({ tool: 'ab-arbitrate', elapsedSec: Number(tick.elapsedNs) / 1e9, rate: { value: r.rates.delivered, unit: 'pps' }, totals: { delivered: s.delivered, gaps: s.gaps }, ...(latency ? { latency } : {}) }))
        }
      },
    },
  )
  await drainAtEnd(arb, o, recovery, onBatch)
  const final = snapshot(false)
  record(lastSkew!)
  for (const file of recording.finish()) ctx.log.info(`wrote ${file}`)
  // The feed's busy span: from the first batch that delivered a packet to the last one.
  const rx = arb.receiveCounters()
  const busySeconds = Number(rx.last_delivery_ns - rx.first_delivery_ns) / 1e9
  ctx.end({ ...final, busy: { seconds: busySeconds, pps: busySeconds > 0 ? Math.round(Number(final.delivered) / busySeconds) : 0 }, stoppedBy: stop, umem: arb.umemAccounting() })
}
