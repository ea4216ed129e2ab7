#!/usr/bin/env node
// The test bed's exchange: a FIX acceptor over the kernel's TCP (run it in namespace exch).
import { parseIntOption, parseIpPortOption, parseSeconds, runTool } from '@kbx/cli'
import type { IpPort, ToolContext } from '@kbx/cli'
import { FixAcceptor } from './acceptor.js'

interface AcceptorCliOptions {
  listen: IpPort
  sender: string
  fillEvery: number
  maxQty: number
  testGapAt?: number
  heartbeats: boolean
  store?: string
  /** Seconds between `interval` events; 0 = none. */
  interval: number
}

await runTool({
  tool: 'fix-acceptor',
  description: 'A small FIX acceptor: acks every NewOrderSingle with an ExecutionReport; answers TestRequest, ResendRequest (GapFill) and Logout',
  build: (program) => {
    program
      .option('--listen <ip:port>', 'address to listen on', parseIpPortOption('--listen'), { ip: '0.0.0.0', port: 9878 })
      .option('--sender <id>', 'our SenderCompID', 'EXCH')
      .option('--fill-every <n>', 'fill every Nth order after acking it (0 = never)', parseIntOption('--fill-every', { min: 0 }), 1)
      .option('--max-qty <n>', 'reject orders above this quantity', parseIntOption('--max-qty', { min: 1 }), 1_000_000)
      .option('--test-gap-at <seq>', 'test hook: skip this outgoing MsgSeqNum once per counterparty', parseIntOption('--test-gap-at', { min: 1 }))
      .option('--no-heartbeats', 'test hook: never send Heartbeats unprompted')
      .option('--interval <s>', 'seconds between interval events (cumulative counters: orders received, acked, …; 0 = none)', parseSeconds('--interval', { min: 0 }), 1)
      .option('--store <dir>', 'keep sequence numbers in DIR/SENDER-COUNTERPARTY.json (a restarted acceptor resumes them); default: in memory')
  },
  run: async (ctx: ToolContext<AcceptorCliOptions>) => {
    const opts = ctx.opts
    const acceptor = new FixAcceptor({
      host: opts.listen.ip,
      port: opts.listen.port,
      senderCompId: opts.sender,
      fillEvery: opts.fillEvery,
      maxQty: opts.maxQty,
      heartbeats: opts.heartbeats,
      ...(opts.store === undefined ? {} : { storeDir: opts.store }),
      ...(opts.testGapAt === undefined ? {} : { gapAt: opts.testGapAt }),
      onEvent: (counterparty, e) => {
        const { event, ...data } = e
        ctx.json.emit(event, { counterparty, ...data })
      },
    })
    const port = await acceptor.listen()
    ctx.onCleanup(() => acceptor.close())
    ctx.json.start({ listen: `${opts.listen.ip}:${port}`, sender: opts.sender })
    const started = Date.now()
    const every = opts.interval
    const timer = every > 0 ? setInterval(() => ctx.json.interval({ elapsedSec: (Date.now() - started) / 1000, ...acceptor.counters }), every * 1000) : undefined
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }))
    if (timer !== undefined) clearInterval(timer)
    ctx.end({ stoppedBy: 'signal', ...acceptor.counters })
  },
})
