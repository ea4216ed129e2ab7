// fix-tcp --io xdp at 20000 orders/s against an acceptor that stalls: its namespace's receive buffer capped
// (net.ipv4.tcp_rmem) and the acceptor stopped (SIGSTOP) for 300 ms at a time, so its window closes and
// reopens under load. Every order must still be acked: the userspace TCP resumes when the window reopens.
import t from 'tap'
import { fixBed, startFixTcp } from './testing/fix-bed.js'

t.setTimeout(240_000)

const ORDERS = 20000
const STALLS = 3
const STALL_MS = 300

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('--orders 20000 --rate 20000 over xdp, the acceptor stalling: every order acked', async (t) => {
  const b = await fixBed(t, { acceptorArgs: ['--interval', '0'] })
  b.net.run(b.netns, 'sysctl', ['-q', '-w', 'net.ipv4.tcp_rmem=4096 65536 262144'])
  const run = startFixTcp(b, ['--orders', String(ORDERS), '--rate', '20000', '--order-timeout', '30', '--reset'], 'xdp')
  const acceptorPid = b.acceptor.child.pid!
  await sleep(300)
  for (let i = 0; i < STALLS; i++) {
    process.kill(acceptorPid, 'SIGSTOP')
    await sleep(STALL_MS)
    process.kill(acceptorPid, 'SIGCONT')
    await sleep(150)
  }
  const exit = await run.exited
  t.equal(exit.code, 0, `fix-tcp exited cleanly: ${run.stderr().slice(-500)}`)
  const end = run.events.find((e) => e.event === 'end')?.data
  const tcp = end?.tcp
  t.equal(end?.orders.sent, ORDERS)
  t.equal(end?.orders.acked, ORDERS, `every order acked (tcp: ${JSON.stringify({ probes: tcp?.zeroWindowProbes, retransmits: tcp?.retransmits, dupAcks: tcp?.dupAcks, timeouts: tcp?.timeouts })})`)
  t.equal(tcp?.txQueueFull, 0, 'no segment lost to a full TX queue')
  t.equal(tcp?.fastRetransmits, 0, 'no fast retransmit: nothing was lost on the veth')
  t.notMatch(run.stderr(), /message dropped/, 'nothing dropped for want of buffer space')
})
