#!/usr/bin/env node
// The test bed's exchange: a FIX acceptor over the kernel's TCP (run it in namespace exch).
import { flagOption, intOption, optionTable, parseIpPortOption, runTool, secondsOption, stringOption, valueOption } from '@kbx/cli'
import { FixAcceptor } from './acceptor.js'

const acceptorOptions = optionTable({
  listen: valueOption('--listen <ip:port>', 'address to listen on', parseIpPortOption('--listen'), { default: { ip: '0.0.0.0', port: 9878 } }),
  sender: stringOption('--sender <id>', 'our SenderCompID', { default: 'EXCH' }),
  fillEvery: intOption('--fill-every <n>', 'fill every Nth order after acking it (0 = never)', { min: 0, default: 1 }),
  maxQty: intOption('--max-qty <n>', 'reject orders above this quantity', { min: 1, default: 1_000_000 }),
  testGapAt: intOption('--test-gap-at <seq>', 'test hook: skip this outgoing MsgSeqNum once per counterparty', { min: 1 }),
  heartbeats: flagOption('--no-heartbeats', 'test hook: never send Heartbeats unprompted'),
  /** Seconds between `interval` events; 0 = none. */
  interval: secondsOption('--interval <s>', 'seconds between interval events (cumulative counters: orders received, acked, …; 0 = none)', { min: 0, default: 1 }),
  busyPoll: flagOption('--busy-poll', 'spin in the event loop instead of sleeping between messages (lowest latency; keeps one core at 100%)'),
  store: stringOption('--store <dir>', 'keep sequence numbers in DIR/SENDER-COUNTERPARTY.json (a restarted acceptor resumes them); default: in memory'),
})

await runTool({
  tool: 'fix-acceptor',
  description: 'A small FIX acceptor: acks every NewOrderSingle with an ExecutionReport; answers TestRequest, ResendRequest (GapFill) and Logout',
  options: acceptorOptions,
  run: async (ctx) => {
    const opts = ctx.opts
    const acceptor = new FixAcceptor({
      host: opts.listen.ip,
      port: opts.listen.port,
      senderCompId: opts.sender,
      fillEvery: opts.fillEvery,
      maxQty: opts.maxQty,
      heartbeats: opts.heartbeats,
      busyPoll: opts.busyPoll === true,
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
    ctx.end({ stoppedBy: 'signal', ...acceptor.counters, busyPoll: opts.busyPoll === true, readToWriteUs: acceptor.readToWrite.summary() })
  },
})
