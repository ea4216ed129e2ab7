import t from 'tap'
import { XskError } from '@kbx/errors'
import { Umem, XskSocket, type UmemAccounting } from './index.js'
import { createVethPair, xskBenchInNamespace } from './testing/netns.js'

function sum(a: UmemAccounting): number {
  return a.free + a.fill + a.rx + a.tx + a.user
}

t.test('frames handed out and taken back are always accounted for', async (t) => {
  const umem = Umem.create({ frameCount: 256, frameSize: 2048 })
  t.teardown(() => umem.close())
  t.equal(umem.frameCount, 256)
  t.equal(umem.frameSize, 2048)
  t.equal(umem.buffer.length, 256 * 2048, 'buffer covers the whole area')
  t.same(umem.accounting(), { total: 256, free: 256, fill: 0, rx: 0, tx: 0, user: 0, parked: 0, sockets: 0 })

  const first = umem.allocFrames(100)
  t.equal(first.length, 100)
  t.equal(new Set(first).size, 100, 'no frame handed out twice')
  t.ok(first.every((addr) => addr % 2048 === 0 && addr < 256 * 2048), 'addresses are frame starts')
  t.match(umem.accounting(), { free: 156, user: 100 })

  const rest = umem.allocFrames(1000)
  t.equal(rest.length, 156, 'only what the pool holds')
  t.equal(umem.allocFrames(1).length, 0, 'an empty pool hands out nothing')
  t.match(umem.accounting(), { free: 0, user: 256 })
  t.equal(umem.frameState(first[0]!), 'user')

  // Any address inside a frame names that frame.
  umem.releaseFrames(first.slice(0, 50).map((addr) => addr + 100))
  t.match(umem.accounting(), { free: 50, user: 206 })
  t.equal(umem.frameState(first[0]!), 'free')

  const before = umem.accounting()
  t.throws(() => umem.releaseFrames([first[60]!, first[0]!]), XskError, 'releasing a free frame fails')
  t.same(umem.accounting(), before, 'a failed release releases nothing')
  t.equal(umem.frameState(first[60]!), 'user', 'the valid frame of the failed batch is still held')
  const twice = (() => {
    try {
      umem.releaseFrames([first[70]!, first[70]!])
      return undefined
    } catch (err) {
      return err
    }
  })()
  t.type(twice, XskError, 'a frame named twice in one release fails')
  t.equal((twice as XskError).code, 'EINVAL')
  t.match((twice as XskError).message, /named twice/)
  t.throws(() => umem.releaseFrames([256 * 2048]), XskError, 'an address past the area fails')
  t.same(umem.accounting(), before)

  umem.releaseFrames([...first.slice(50), ...rest])
  const end = umem.accounting()
  t.equal(end.free, 256)
  t.equal(sum(end), end.total)

  // Many cycles of odd sizes keep the pool whole.
  for (let round = 0; round < 50; round++) {
    const got = umem.allocFrames((round * 37) % 200)
    const a = umem.accounting()
    t.equal(sum(a), a.total)
    umem.releaseFrames(got)
  }
  t.equal(umem.accounting().free, 256)
})

t.test('options are checked', async (t) => {
  t.throws(() => Umem.create({ frameSize: 3000 }), XskError, 'frame size must be a power of two')
  t.throws(() => Umem.create({ frameCount: 0 }), /frameCount/)
  const umem = Umem.create({ frameCount: 64, headroom: 0 })
  t.equal(umem.headroom, 0)
  t.equal(umem.fillSize, 2048, 'default fill ring')
  umem.close()
  t.ok(umem.closed)
  t.throws(() => umem.allocFrames(1), XskError, 'a closed UMEM refuses work')
  umem.close()
})

t.test('accounting through socket create, TX, RX and close', async (t) => {
  const pair = createVethPair(t)
  const umem = Umem.create({ frameCount: 1024 })
  t.teardown(() => umem.close())
  const socket = XskSocket.create({ umem, iface: pair.a, fillFrames: 300, log: () => {} })
  t.equal(socket.fillFrames, 300)
  t.match(umem.accounting(), { total: 1024, fill: 300, free: 724, sockets: 1 })

  // TX: frames leave user, sit in tx until completion, come back free.
  const batch = socket.txBatch(64)
  for (let round = 0; round < 20; round++) {
    t.equal(batch.allocate(), 64)
    for (let i = 0; i < batch.count; i++) {
      umem.buffer.fill(0xee, batch.addr(i), batch.addr(i) + 60)
      batch.setLength(i, 60)
    }
    const a = umem.accounting()
    t.equal(a.user, 64)
    t.equal(sum(a), a.total)
    t.equal(socket.send(batch), 64)
    t.equal(batch.count, 0, 'sent descriptors leave the batch')
    const b = umem.accounting()
    t.equal(b.user, 0)
    t.equal(b.tx, socket.txPending)
    t.equal(sum(b), b.total)
  }
  t.ok(socket.drain(2000), 'every frame completed')
  t.match(umem.accounting(), { tx: 0, user: 0, fill: 300, free: 724 })
  t.equal(socket.statistics().txCompleted, 20n * 64n)

  // One call per batch: send, then refill with free frames; the refilled ones are the user's.
  t.equal(batch.allocate(10), 10)
  t.equal(batch.fresh, 0)
  for (let i = 0; i < 10; i++) batch.setLength(i, 60)
  t.equal(socket.send(batch, 64, 60), 10)
  t.equal(batch.sent, 10)
  t.equal(batch.fresh, 0, 'nothing left over: the fresh frames start at 0')
  t.equal(batch.count, 64, 'refilled to capacity')
  t.equal(batch.length(5), 60, 'with the requested length')
  t.match(umem.accounting(), { user: 64, tx: socket.txPending })
  t.equal(socket.send(batch, 0), 64)
  t.equal(batch.count, 0)
  t.ok(socket.drain(2000))
  t.match(umem.accounting(), { tx: 0, user: 0, free: 724 })
  // A fresh frame left empty cannot be sent: the whole batch is refused and stays.
  batch.allocate(2)
  batch.setLength(0, 60)
  t.throws(() => socket.send(batch), /empty/)
  t.equal(batch.count, 2)
  batch.release()
  t.match(umem.accounting(), { user: 0, free: 724 })

  // A frame the user does not hold cannot be sent, and a failed send submits nothing.
  const [free] = umem.allocFrames(1)
  umem.releaseFrames([free!])
  t.throws(() => socket.send([{ addr: free!, len: 60 }]), /not held by the user/)
  const [held] = umem.allocFrames(1)
  t.throws(() => socket.send([{ addr: held!, len: 60 }, { addr: held!, len: 60 }]), /named twice/)
  t.throws(() => socket.send([{ addr: held!, len: 4000 }]), /past the end of its frame/)
  t.match(umem.accounting(), { user: 1, tx: 0 })
  t.equal(socket.send([{ addr: held!, len: 60 }]), 1)
  t.ok(socket.drain(2000))

  // RX: frames sent into the peer land in the fill frames; receiving moves them to rx and refills.
  const { steerTo } = await import('./steer.js')
  const { BpfObject } = await import('@kbx/bpf')
  const { bpfObjectPath } = await import('@kbx/ffi')
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  t.teardown(() => obj.close())
  obj.load()
  const link = obj.program('kbx_xsk_redirect').attachXdp(pair.a, 'native')
  t.teardown(() => link.detach())
  steerTo(obj, [socket])
  xskBenchInNamespace(pair, ['tx', '--iface', pair.b, '--count', '40', '--zero-copy', 'never', '--frames', '256'])
  const rx = socket.rxBatch(16)
  let got = 0
  const deadline = Date.now() + 5000
  while (got < 40 && Date.now() < deadline) {
    // Hold each batch until the accounting is checked, then fold its release into the next receive.
    got += socket.receiveInto(rx, 5)
    const a = umem.accounting()
    t.equal(a.rx, rx.held, 'frames of the batch are held by the user')
    t.equal(a.fill, 300, 'the fill ring is topped up')
    t.equal(sum(a), a.total)
  }
  t.equal(got, 40)
  socket.release(rx)
  t.match(umem.accounting(), { rx: 0, fill: 300, free: 724 })

  socket.close()
  t.same(umem.accounting(), { total: 1024, free: 1024, fill: 0, rx: 0, tx: 0, user: 0, parked: 0, sockets: 0 })
})

t.test("the first socket's frames stay parked until the UMEM's last socket closes", async (t) => {
  const pair = createVethPair(t, { queues: 2 })
  const umem = Umem.create({ frameCount: 512 })
  t.teardown(() => umem.close())
  const first = XskSocket.create({ umem, iface: pair.a, queue: 0, fillFrames: 100, log: () => {} })
  const second = XskSocket.create({ umem, iface: pair.a, queue: 1, fillFrames: 50, log: () => {} })
  t.equal(first.shared, false)
  t.equal(second.shared, true)
  t.match(umem.accounting(), { fill: 150, free: 362, sockets: 2, parked: 0 })

  first.close()
  t.match(umem.accounting(), { fill: 150, parked: 100, sockets: 1 }, "its bind lives on: frames stay with it")
  t.throws(
    () => XskSocket.create({ umem, iface: pair.a, queue: 0, log: () => {} }),
    /still holds it/,
    'its queue is still taken',
  )
  second.close()
  t.same(umem.accounting(), { total: 512, free: 512, fill: 0, rx: 0, tx: 0, user: 0, parked: 0, sockets: 0 })
  // The registration is renewed: the queue binds again.
  const again = XskSocket.create({ umem, iface: pair.a, queue: 0, fillFrames: 10, log: () => {} })
  t.equal(again.shared, false)
  t.match(umem.accounting(), { fill: 10, sockets: 1 })
})

t.test('closing the UMEM closes its sockets', async (t) => {
  const pair = createVethPair(t)
  const umem = Umem.create({ frameCount: 128 })
  const socket = XskSocket.create({ umem, iface: pair.a, log: () => {} })
  umem.close()
  t.ok(socket.closed)
  t.throws(() => socket.statistics(), XskError)
  socket.close()
})
