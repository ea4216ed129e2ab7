// Test helper: a receive loop on argv[2] that must stop promptly on SIGINT. Prints {"event":"ready"} when
// looping, then {"event":"stopped","stopMs":…,"iterations":…} (signal → loop exit) and exits 0.
import { runBatchLoop } from '@kbx/cli'
import { Umem, XskSocket } from '../index.js'

const iface = process.argv[2]!
const umem = Umem.create({ frameCount: 256 })
const socket = XskSocket.create({ umem, iface, log: () => {} })
const batch = socket.rxBatch(64)
const stop = new AbortController()
let signalledAt = 0
process.on('SIGINT', () => {
  signalledAt = performance.now()
  stop.abort()
})
let iterations = 0
setImmediate(() => process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`))
await runBatchLoop(
  () => {
    socket.receiveInto(batch, 5)
    iterations++
  },
  { signal: stop.signal },
)
const stopMs = performance.now() - signalledAt
umem.close()
process.stdout.write(`${JSON.stringify({ event: 'stopped', stopMs, iterations })}\n`)
