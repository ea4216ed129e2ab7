// The foundation's demo: UDP frames sent through an AF_XDP TX ring on one end of a veth pair and
// received through an AF_XDP RX socket on the other, steered by the xdp_xsk_redirect program.
//   rx: xsk-demo.ts rx --iface veth0 [--pinned]     (--pinned: use the maps of the program `xdp-load load` pinned)
//   tx: xsk-demo.ts tx --iface veth1 --dst 10.0.0.10 --count 100000
import { BpfMap, BpfObject, raiseMemlockLimit } from '@kbx/bpf'
import type { XdpLink } from '@kbx/bpf'
import { commonOptions, flagOption, intOption, optionTable, parseIPv4Option, runLoop, runTool, scaledIntOption, stringOption, valueOption } from '@kbx/cli'
import type { OptionsOf, ToolContext } from '@kbx/cli'
import { UsageError } from '@kbx/errors'
import { bpfObjectPath } from '@kbx/ffi'
import { interfaceInfo, resolveNextHop, udpFrameTemplate } from '@kbx/net'
import { RateMeter } from '@kbx/stats'
import { Umem, XskSocket, steerTo } from '@kbx/xsk'
import type { SteeringObject } from '@kbx/xsk'

const TOOL = 'xsk-demo'
const [role, ...argv] = process.argv.slice(2)

const demoOptions = optionTable({
  iface: stringOption('--iface <name>', 'interface', { required: true }),
  pinned: flagOption('--pinned', 'rx: steer through the maps xdp-load pinned for --iface'),
  dst: valueOption('--dst <ip>', 'tx: destination address', parseIPv4Option('--dst')),
  port: intOption('--port <n>', 'UDP destination port', { min: 1, max: 65535, default: 9000 }),
  count: scaledIntOption('--count <n>', 'packets (rx: stop after; tx: send)', { default: 100000 }),
  rate: scaledIntOption('--rate <pps>', 'tx: packets per second (0: as fast as possible)', { default: 0 }),
  size: intOption('--size <bytes>', 'tx: UDP payload bytes', { min: 4, max: 1472, default: 64 }),
  ...commonOptions,
})
type DemoOptions = OptionsOf<typeof demoOptions>

function openSteering(ctx: ToolContext<DemoOptions>, opts: DemoOptions): SteeringObject {
  if (opts.pinned) {
    const dir = `${process.env['KBX_PIN_ROOT'] ?? '/sys/fs/bpf/kbx'}/xdp/${opts.iface}/maps`
    const maps = { xsks: BpfMap.fromPin(`${dir}/xsks`), xsk_slots: BpfMap.fromPin(`${dir}/xsk_slots`) }
    ctx.onCleanup(() => Object.values(maps).forEach((m) => m.close()))
    return {
      map: (name) => {
        const m = maps[name as keyof typeof maps]
        if (!m) throw new UsageError(`no pinned map ${name}`)
        return m
      },
    }
  }
  raiseMemlockLimit()
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  obj.setRodata('match_proto', 17)
  obj.setRodata('match_dport_min', opts.port)
  obj.setRodata('match_dport_max', opts.port)
  obj.load()
  const link: XdpLink = obj.program('kbx_xsk_redirect').attachXdp(opts.iface, opts.mode, (m) => ctx.log.info(m))
  ctx.onCleanup(() => {
    link.close()
    obj.close()
  })
  return obj
}

async function receive(ctx: ToolContext<DemoOptions>): Promise<void> {
  const opts = ctx.opts
  const umem = Umem.create({ frameCount: 4096 })
  ctx.onCleanup(() => umem.close())
  const socket = XskSocket.create({ umem, iface: opts.iface, queue: opts.queue, tx: false, mode: opts.mode, log: (m) => ctx.log.info(m) })
  steerTo(openSteering(ctx, opts), [socket])
  ctx.json.start({ role: 'rx', iface: opts.iface, queue: opts.queue, zeroCopy: socket.zeroCopy, port: opts.port })

  const batch = socket.rxBatch(64)
  let packets = 0n
  let bytes = 0n
  const meter = new RateMeter({ packets, bytes })
  const snapshot = () => {
    const s = socket.statistics()
    return { packets, bytes, rxDropped: s.rxDropped, rxRingFull: s.rxRingFull, fillRingEmpty: s.fillRingEmpty }
  }
  const stop = await runLoop(
    ctx,
    () => {
      const n = socket.receiveInto(batch, 2)
      if (n === 0) return
      packets += BigInt(n)
      let len = 0
      for (let i = 0; i < n; i++) len += batch.length(i)
      bytes += BigInt(len)
      if (opts.count > 0 && packets >= BigInt(opts.count)) return false
    },
    {
      intervalSec: opts.interval,
      durationSec: opts.duration,
      onInterval: () => {
        const r = meter.sample({ packets, bytes })
        ctx.json.interval({ ...snapshot(), pps: Math.round(r.rates.packets), umem: umem.accounting() })
        ctx.status.update(`rx ${packets} packets, ${Math.round(r.rates.packets)} pps`)
      },
    },
  )
  batch.release()
  ctx.end({ ...snapshot(), stoppedBy: stop, umem: umem.accounting() })
}

async function transmit(ctx: ToolContext<DemoOptions>): Promise<void> {
  const opts = ctx.opts
  if (!opts.dst) throw new UsageError('tx needs --dst IP', { op: 'parse --dst' })
  const hop = resolveNextHop(opts.dst, { iface: opts.iface })
  const src = interfaceInfo(opts.iface)
  const template = udpFrameTemplate({
    srcMac: src.mac,
    dstMac: hop.nextHopMac,
    srcIp: hop.srcIp,
    dstIp: opts.dst,
    srcPort: 40000,
    dstPort: opts.port,
    payload: Buffer.alloc(opts.size),
  })
  const umem = Umem.create({ frameCount: 4096 })
  ctx.onCleanup(() => umem.close())
  const socket = XskSocket.create({ umem, iface: opts.iface, queue: opts.queue, rx: false, log: (m) => ctx.log.info(m) })
  ctx.json.start({ role: 'tx', iface: opts.iface, dst: opts.dst, port: opts.port, nextHopMac: hop.nextHopMac, count: opts.count })

  const batch = socket.txBatch(64)
  const payload = Buffer.alloc(opts.size)
  let queued = 0
  const completed = (): bigint => socket.statistics().txCompleted
  const meter = new RateMeter<{ completed: bigint }>({ completed: 0n })
  const started = process.hrtime.bigint()
  const allowed = (): number =>
    opts.rate > 0 ? Math.floor((Number(process.hrtime.bigint() - started) / 1e9) * opts.rate) - queued : Number.MAX_SAFE_INTEGER
  const stop = await runLoop(
    ctx,
    () => {
      const want = Math.max(0, Math.min(batch.capacity - batch.count, opts.count - queued, allowed()))
      const first = batch.count
      const got = want > 0 ? batch.allocate(want) : 0
      for (let i = first; i < first + got; i++) {
        payload.writeUInt32BE(queued + i - first, 0)
        batch.setLength(i, template.write(batch.frame(i), 0, payload))
      }
      queued += got
      socket.send(batch)
      if (queued >= opts.count && socket.txPending === 0 && batch.count === 0) return false
      if (got === 0) socket.wait({ tx: true }, 1)
    },
    {
      intervalSec: opts.interval,
      durationSec: opts.duration,
      onInterval: () => {
        const r = meter.sample({ completed: completed() })
        ctx.json.interval({ sent: r.totals.completed, pps: Math.round(r.rates.completed), umem: umem.accounting() })
      },
    },
  )
  socket.drain(1000)
  batch.release()
  ctx.end({ sent: completed(), requested: opts.count, stoppedBy: stop, statistics: socket.statistics(), umem: umem.accounting() })
}

if (role !== 'rx' && role !== 'tx') {
  process.stderr.write('usage: xsk-demo.ts rx|tx --iface IF [options]\n')
  process.exit(2)
}
await runTool({
  tool: `${TOOL}-${role}`,
  argv,
  privileges: true,
  options: demoOptions,
  run: role === 'rx' ? receive : transmit,
})
