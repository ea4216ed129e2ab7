import t from 'tap'
import { StagedBytes } from './staged-bytes.js'

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill)

t.test('what does not fit waits in order behind the staging buffer, and moves up as the step takes bytes', async (t) => {
  const staged = new StagedBytes(Buffer.alloc(10), 100)
  t.ok(staged.write(bytes(6, 1)))
  t.ok(staged.write(bytes(6, 2)), 'queued, not refused')
  t.ok(staged.write(bytes(2, 3)), 'queued behind it although it would fit: order kept')
  t.same([staged.length, staged.queued, staged.pending, staged.room], [6, 8, 14, 0])
  staged.consume(6)
  t.same([staged.length, staged.queued], [8, 0], 'both queued messages moved up')
  t.same([...staged.buffer.subarray(0, 8)], [2, 2, 2, 2, 2, 2, 3, 3])
  staged.consume(3)
  t.same([...staged.buffer.subarray(0, staged.length)], [2, 2, 2, 3, 3], 'a partial take keeps the rest in front')
  t.equal(staged.room, 5)
})

t.test('refused only past the queue capacity or for a message larger than the staging buffer', async (t) => {
  const staged = new StagedBytes(Buffer.alloc(10), 12)
  t.ok(staged.write(bytes(10, 1)))
  t.ok(staged.write(bytes(10, 2)))
  t.notOk(staged.write(bytes(3, 3)), 'the queue would hold 13 > 12')
  t.ok(staged.write(bytes(2, 4)))
  t.notOk(new StagedBytes(Buffer.alloc(10), 100).write(bytes(11, 5)), 'never fits the staging buffer')
  staged.clear()
  t.same([staged.length, staged.queued, staged.room], [0, 0, 10])
})

t.test('a burst far larger than the staging buffer goes out whole and in order', async (t) => {
  const staged = new StagedBytes(Buffer.alloc(64), 1 << 20)
  const sent: number[] = []
  const taken = Array.from({ length: 1000 }, (_, i) => staged.write(Buffer.from([i & 0xff, i >> 8]))) // 2000 bytes
  t.ok(taken.every(Boolean), 'every message taken')
  while (staged.pending > 0) {
    const take = Math.min(staged.length, 7)
    for (const b of staged.buffer.subarray(0, take)) sent.push(b)
    staged.consume(take)
  }
  const expected = Array.from({ length: 1000 }, (_, i) => [i & 0xff, i >> 8]).flat()
  t.same(sent, expected)
})
