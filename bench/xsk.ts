/**
 * `pnpm bench xsk`: AF_XDP packets per second through @kbx/xsk (TypeScript loop, one native call per batch)
 * against the pure-C loop native/build/xsk_bench over the same libkbx calls, in the same run.
 *
 * Topology: a veth pair, end A here, end B in a fresh namespace; both removed at the end.
 *   TX: a socket on A sends copies of a 64-byte UDP frame (a sequence number stamped into each) as fast as
 *       it can; counted: frames completed in the window; cross-checked: frames B received.
 *   RX: xsk_bench tx on B (in the namespace) blasts frames; xdp_xsk_redirect on A steers them to a socket
 *       on A that counts them, reads each stamp and releases them; counted: frames received in the window.
 * Runs alternate TS and C; medians of --runs runs of --seconds each. JSON lines on stdout (one `run`
 * event per run, one `end` event with medians and TS/C ratios), a table on stderr.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { availableParallelism } from 'node:os'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { BpfObject } from '@kbx/bpf'
import { CPU_SET_BYTES, bpfObjectPath, lastErrno, libc, repoRoot } from '@kbx/ffi'
import { buildUdpFrame } from '@kbx/net'
import { JsonLines, median } from '@kbx/stats'
import { runBatchLoop } from '@kbx/cli'
import { Umem, XskSocket, steerTo } from '@kbx/xsk'

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '2' },
    batch: { type: 'string', default: '64' },
    'frame-len': { type: 'string', default: '64' },
    only: { type: 'string' },
    cpu: { type: 'string' },
    'generator-cpu': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (opts.help) {
  process.stderr.write(
    'usage: pnpm bench xsk [--runs 5] [--seconds 2] [--batch 64] [--frame-len 64] [--only tx|rx]\n' +
      '                      [--cpu N (measured loops; default: the last CPU)] [--generator-cpu N (default 0)]\n',
  )
  process.exit(0)
}
const runs = Number(opts.runs)
const seconds = Number(opts.seconds)
const batchSize = Number(opts.batch)
const frameLen = Number(opts['frame-len'])
const directions = opts.only ? [opts.only] : ['tx', 'rx']
const cpus = availableParallelism()
// The TS loop and the C loop run pinned to the same CPU, the RX generator to another one.
const measuredCpu = opts.cpu === undefined ? cpus - 1 : Number(opts.cpu)
const generatorCpu = opts['generator-cpu'] === undefined ? 0 : Number(opts['generator-cpu'])
if (!(runs >= 1 && seconds > 0 && batchSize >= 1 && batchSize <= 1024 && frameLen >= 46 && frameLen <= 1514)) {
  process.stderr.write('bench xsk: --runs ≥ 1, --seconds > 0, --batch 1..1024, --frame-len 46..1514\n')
  process.exit(2)
}
if (![measuredCpu, generatorCpu].every((cpu) => Number.isInteger(cpu) && cpu >= 0 && cpu < cpus)) {
  process.stderr.write(`bench xsk: CPUs are 0..${cpus - 1}\n`)
  process.exit(2)
}
if (!directions.every((d) => d === 'tx' || d === 'rx')) {
  process.stderr.write('bench xsk: --only takes tx or rx\n')
  process.exit(2)
}

const xskBench = join(repoRoot, 'native/build/xsk_bench')
const redirectObject = bpfObjectPath('xdp_xsk_redirect')
for (const [path, build] of [
  [xskBench, 'make -C native'],
  [join(repoRoot, 'native/build/libkbx.so'), 'make -C native'],
  [redirectObject, 'make -C bpf'],
]) {
  if (!existsSync(path!)) {
    process.stderr.write(`bench xsk: ${path} is missing: run \`${build}\` (or \`pnpm build\`)\n`)
    process.exit(1)
  }
}

const out = new JsonLines({ tool: 'bench-xsk' })
const stop = new AbortController()
process.on('SIGINT', () => stop.abort())
process.on('SIGTERM', () => stop.abort())

const STAMP_OFFSET = 42 // UDP payload of an untagged IPv4 frame
const SRC_MAC = '02:00:00:00:00:01'
const DST_MAC = '02:00:00:00:00:02' // nobody's: B drops the TX frames early (PACKET_OTHERHOST)

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

// ---------------------------------------------------------------- topology

const id = randomBytes(3).toString('hex')
const ns = `kbxbench-${id}`
const ifA = `kbA${id}`
const ifB = `kbB${id}`
const children = new Set<ChildProcess>()

function setUp(): void {
  run('ip', ['netns', 'add', ns])
  run('ip', ['link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', ns])
  // No IPv6 chatter: the peer's counter then counts our frames only.
  run('sysctl', ['-qw', `net.ipv6.conf.${ifA}.disable_ipv6=1`])
  run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${ifB}.disable_ipv6=1`])
  run('ip', ['link', 'set', ifA, 'up'])
  run('ip', ['-n', ns, 'link', 'set', ifB, 'up'])
}

function tearDown(): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  for (const args of [['link', 'del', ifA], ['netns', 'del', ns]]) {
    try {
      run('ip', args)
    } catch {
      // already gone
    }
  }
}

function peerRxPackets(): number {
  return Number(run('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${ifB}/statistics/rx_packets`]).trim())
}

interface ChildRun {
  child: ChildProcess
  result: Promise<Record<string, unknown>>
  ready: Promise<void>
}

/** Pins the calling thread (the one running the TS loops) to cpu. */
function pinThisThread(cpu: number): void {
  const mask = Buffer.alloc(CPU_SET_BYTES)
  mask[cpu >> 3] = 1 << (cpu & 7)
  if (libc().sched_setaffinity(0, CPU_SET_BYTES, mask) !== 0) {
    process.stderr.write(`bench xsk: could not pin to CPU ${cpu} (errno ${lastErrno()}); running unpinned\n`)
  }
}

/** Spawns xsk_bench on cpu (optionally in the namespace); resolves `ready` on its stderr ready line, `result` on exit. */
function startXskBench(args: string[], inNamespace: boolean, cpu: number): ChildRun {
  const pinned = ['taskset', '-c', `${cpu}`, xskBench, ...args]
  const [cmd, argv] = inNamespace ? ['ip', ['netns', 'exec', ns, ...pinned]] : [pinned[0]!, pinned.slice(1)]
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  let markReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line.includes('ready')) markReady()
    else process.stderr.write(`xsk_bench: ${line}\n`)
  })
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on('exit', (code) => {
      children.delete(child)
      markReady()
      const last = stdout.trim().split('\n').pop() ?? ''
      try {
        const parsed = JSON.parse(last) as Record<string, unknown>
        if (parsed['event'] === 'error' || code !== 0) reject(new Error(`xsk_bench ${args[0]} failed: ${last}`))
        else resolve(parsed)
      } catch {
        reject(new Error(`xsk_bench ${args[0]} exited with ${code}: ${stdout}`))
      }
    })
  })
  return { child, result, ready }
}

function generatorArgs(duration: number): string[] {
  return ['tx', '--iface', ifB, '--duration', `${duration}`, '--batch', '64', '--frame-len', `${frameLen}`, '--stamp', '--zero-copy', 'never']
}

// ---------------------------------------------------------------- the measurements

interface RunResult {
  pps: number
  packets: number
  seconds: number
  [key: string]: unknown
}

const quietLog = (): void => {}

async function tsTx(): Promise<RunResult> {
  const umem = Umem.create({ frameCount: 4096 })
  try {
    const socket = XskSocket.create({ umem, iface: ifA, rx: false, tx: true, log: quietLog })
    const template = buildUdpFrame({
      srcMac: SRC_MAC,
      dstMac: DST_MAC,
      srcIp: '10.11.0.1',
      dstIp: '10.11.0.2',
      srcPort: 9000,
      dstPort: 9001,
      payload: Buffer.alloc(frameLen - STAMP_OFFSET, 0x61),
    })
    template.writeUInt16BE(0, 40) // no UDP checksum: every frame gets its own stamp
    for (let f = 0; f < umem.frameCount; f++) template.copy(umem.buffer, f * umem.frameSize)

    const view = umem.view
    const batch = socket.txBatch(batchSize)
    let sequence = 0
    let submitted = 0
    let iterations = 0
    const before = socket.statistics().txCompleted
    const cpuBefore = process.cpuUsage()
    const start = performance.now()
    const end = start + seconds * 1000
    await runBatchLoop(
      () => {
        // New frames of the last round: length and stamp; then ONE call sends and refills the batch.
        const count = batch.count
        for (let i = batch.fresh; i < count; i++) {
          batch.setLength(i, frameLen)
          view.setUint32(batch.addr(i) + STAMP_OFFSET, sequence, true)
          sequence = (sequence + 1) >>> 0
        }
        const sent = socket.send(batch, batchSize)
        submitted += sent
        if (sent === 0 && count > 0) socket.wait({ tx: true }, 1)
        // The clock every 16 batches, as in the C loop.
        return (++iterations & 15) !== 0 || performance.now() < end
      },
      { signal: stop.signal, checkEvery: 16 },
    )
    const elapsed = (performance.now() - start) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    const inWindow = Number(socket.statistics().txCompleted - before)
    socket.drain(1000)
    batch.release()
    const stats = socket.statistics()
    return {
      pps: inWindow / elapsed,
      packets: inWindow,
      seconds: elapsed,
      submitted,
      completed: Number(stats.txCompleted - before),
      kicks: Number(stats.kicks),
      ...cpuPerPacket(cpu.user / 1e6, cpu.system / 1e6, inWindow),
      zeroCopy: socket.zeroCopy,
    }
  } finally {
    umem.close()
  }
}

/** CPU nanoseconds per packet in user space and in the kernel (process-wide). */
function cpuPerPacket(userS: number, sysS: number, packets: number): { userNsPerPacket: number; sysNsPerPacket: number } {
  return {
    userNsPerPacket: packets > 0 ? Math.round((userS * 1e9) / packets) : 0,
    sysNsPerPacket: packets > 0 ? Math.round((sysS * 1e9) / packets) : 0,
  }
}

async function cTx(): Promise<RunResult> {
  const r = await startXskBench(
    ['tx', '--iface', ifA, '--duration', `${seconds}`, '--batch', `${batchSize}`, '--frame-len', `${frameLen}`, '--stamp'],
    false,
    measuredCpu,
  ).result
  return {
    pps: r['pps'] as number,
    packets: r['completed_in_window'] as number,
    seconds: r['seconds'] as number,
    submitted: r['submitted'] as number,
    completed: r['completed'] as number,
    kicks: (r['stats'] as Record<string, number>)['kicks'],
    ...cpuPerPacket(r['user_s'] as number, r['sys_s'] as number, r['completed_in_window'] as number),
    zeroCopy: r['zero_copy'] as boolean,
  }
}

/** Runs fn while xsk_bench tx blasts frames into B; fn gets a promise of the generator's result. */
async function withGenerator<T>(startAfter: Promise<void> | undefined, fn: () => Promise<T>): Promise<{ value: T; generator: Record<string, unknown> }> {
  await startAfter
  const generator = startXskBench(generatorArgs(seconds + 3), true, generatorCpu)
  try {
    const value = await fn()
    generator.child.kill('SIGINT')
    return { value, generator: await generator.result }
  } catch (err) {
    generator.child.kill('SIGKILL')
    throw err
  }
}

async function tsRx(): Promise<RunResult> {
  const obj = BpfObject.open(redirectObject)
  const umem = Umem.create({ frameCount: 4096 })
  try {
    obj.load()
    const link = obj.program('kbx_xsk_redirect').attachXdp(ifA, 'native')
    try {
      const socket = XskSocket.create({ umem, iface: ifA, rx: true, tx: false, log: quietLog })
      steerTo(obj, [socket])
      const view = umem.view
      const batch = socket.rxBatch(batchSize)
      let packets = 0
      let bytes = 0
      let stampXor = 0
      let start = 0
      let end = 0
      let droppedBefore = 0n
      let cpuBefore = process.cpuUsage()
      const readyAt = performance.now()
      const { value: elapsed, generator } = await withGenerator(undefined, async () => {
        await runBatchLoop(
          () => {
            const n = socket.receiveInto(batch, 5)
            const now = performance.now()
            if (n > 0 && start === 0) {
              start = now
              end = start + seconds * 1000
              droppedBefore = socket.statistics().rxDropped
              cpuBefore = process.cpuUsage()
            }
            for (let i = 0; i < n; i++) {
              bytes += batch.length(i)
              stampXor ^= view.getUint32(batch.addr(i) + STAMP_OFFSET, true)
            }
            packets += n
            if (start !== 0) return now < end
            return now - readyAt < 3000
          },
          { signal: stop.signal },
        )
        return start === 0 ? 0 : (performance.now() - start) / 1000
      })
      const cpu = process.cpuUsage(cpuBefore)
      batch.release()
      const stats = socket.statistics()
      return {
        pps: elapsed > 0 ? packets / elapsed : 0,
        packets,
        seconds: elapsed,
        bytes,
        stampXor,
        rxDroppedInWindow: Number(stats.rxDropped - droppedBefore),
        fillRingEmpty: Number(stats.fillRingEmpty),
        generatorPps: generator['pps'] as number,
        ...cpuPerPacket(cpu.user / 1e6, cpu.system / 1e6, packets),
        zeroCopy: socket.zeroCopy,
      }
    } finally {
      link.detach()
    }
  } finally {
    umem.close()
    obj.close()
  }
}

async function cRx(): Promise<RunResult> {
  const receiver = startXskBench(
    ['rx', '--iface', ifA, '--xdp-object', redirectObject, '--duration', `${seconds}`, '--batch', `${batchSize}`],
    false,
    measuredCpu,
  )
  const { value: r, generator } = await withGenerator(receiver.ready, () => receiver.result)
  const stats = r['stats'] as Record<string, number>
  return {
    pps: r['pps'] as number,
    packets: r['packets'] as number,
    seconds: r['seconds'] as number,
    bytes: r['bytes'] as number,
    rxDroppedInWindow: r['rx_dropped_in_window'] as number,
    fillRingEmpty: stats['fill_ring_empty']!,
    generatorPps: generator['pps'] as number,
    ...cpuPerPacket(r['user_s'] as number, r['sys_s'] as number, r['packets'] as number),
    zeroCopy: r['zero_copy'] as boolean,
  }
}

// ---------------------------------------------------------------- driver


const measurements: Record<string, Record<'ts' | 'c', () => Promise<RunResult>>> = {
  tx: { ts: tsTx, c: cTx },
  rx: { ts: tsRx, c: cRx },
}

async function main(): Promise<number> {
  pinThisThread(measuredCpu)
  setUp()
  const pps: Record<string, Record<'ts' | 'c', number[]>> = {}
  let zeroCopy = false
  try {
    for (const direction of directions) {
      pps[direction] = { ts: [], c: [] }
      for (let r = 1; r <= runs && !stop.signal.aborted; r++) {
        // Alternate which goes first, so drift over the run does not favour one.
        const order: ('ts' | 'c')[] = r % 2 ? ['ts', 'c'] : ['c', 'ts']
        for (const impl of order) {
          if (stop.signal.aborted) break
          const peerBefore = direction === 'tx' ? peerRxPackets() : 0
          const result = await measurements[direction]![impl]()
          if (direction === 'tx') result['peerReceived'] = peerRxPackets() - peerBefore
          pps[direction]![impl].push(result.pps)
          zeroCopy = result['zeroCopy'] === true
          out.emit('run', { bench: 'xsk', direction, impl, run: r, batch: batchSize, frameLen, ...result, pps: Math.round(result.pps) })
          process.stderr.write(`${direction} ${impl.padEnd(2)} run ${r}/${runs}: ${Math.round(result.pps).toLocaleString('en-US')} pps\n`)
        }
      }
    }
  } finally {
    tearDown()
  }
  if (stop.signal.aborted) {
    process.stderr.write('bench xsk: interrupted\n')
    return 130
  }

  const summary: Record<string, unknown> = {}
  const rows: string[] = []
  for (const direction of directions) {
    const tsRuns = pps[direction]!.ts
    const cRuns = pps[direction]!.c
    const ts = median(tsRuns)
    const c = median(cRuns)
    const ratio = c > 0 ? ts / c : 0
    // Run r of TS and of C ran back to back: their ratio is the least disturbed by load that comes and goes.
    const paired = median(tsRuns.map((value, r) => (cRuns[r]! > 0 ? value / cRuns[r]! : 0)))
    summary[direction] = {
      tsPps: Math.round(ts),
      cPps: Math.round(c),
      ratio: Number(ratio.toFixed(3)),
      pairedRatio: Number(paired.toFixed(3)),
      runs,
    }
    rows.push(
      `${direction.toUpperCase().padEnd(4)}${Math.round(ts).toLocaleString('en-US').padStart(14)}${Math.round(c).toLocaleString('en-US').padStart(14)}${ratio.toFixed(3).padStart(8)}${paired.toFixed(3).padStart(14)}`,
    )
  }
  out.emit('end', {
    bench: 'xsk',
    seconds,
    batch: batchSize,
    frameLen,
    mode: zeroCopy ? 'zero-copy' : 'copy',
    cpu: measuredCpu,
    generatorCpu,
    ...summary,
  })
  process.stderr.write(
    `\nAF_XDP on veth (${zeroCopy ? 'zero-copy' : 'copy mode'}), ${frameLen}-byte frames, batch ${batchSize}, ` +
      `median of ${runs} × ${seconds} s, loops on CPU ${measuredCpu}, generator on CPU ${generatorCpu}\n` +
      `${''.padEnd(4)}${'TS pps'.padStart(14)}${'C pps'.padStart(14)}${'TS/C'.padStart(8)}${'paired TS/C'.padStart(14)}\n${rows.join('\n')}\n`,
  )
  return 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    tearDown()
    out.emit('error', { message: err instanceof Error ? err.message : String(err) })
    process.stderr.write(`bench xsk: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
