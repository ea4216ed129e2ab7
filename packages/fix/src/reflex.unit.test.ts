// The native FIX reflex through the FFI: framing (split, concatenated, bad checksum, bad body length,
// garbage) in step with the TypeScript parser, and the order it builds only for the armed, in-sequence
// ExecutionReport.
import t from 'tap'
import type { Test } from 'tap'
import { FixParser, Tag, buildMessage } from './codec.js'
import { FixReflex } from './reflex.js'
import type { ReflexArm } from './reflex.js'

const template = {
  beginString: 'FIX.4.4',
  senderCompId: 'CLIENT1',
  targetCompId: 'EXCH',
  msgType: 'D',
  pre: Buffer.from('55=KBX\x0154=1\x01', 'latin1'),
  timeTag: 60,
  post: Buffer.from('38=100\x0140=2\x0144=100.25\x0159=0\x01', 'latin1'),
}
const arm: ReflexArm = { clOrdId: 7, expectSeq: 10, nextSeq: 20, nextClOrdId: 8 }

const header = (seq: number, extra: [number, string | number][] = [], sender = 'EXCH') =>
  [[Tag.SenderCompID, sender], [Tag.TargetCompID, 'CLIENT1'], [Tag.MsgSeqNum, seq], [Tag.SendingTime, '20250101-00:00:00.000'], ...extra] as [number, string | number][]
const er = (seq: number, clOrdId: number, extra: [number, string | number][] = [], sender = 'EXCH') =>
  buildMessage([[Tag.MsgType, '8'], ...header(seq, extra, sender), [Tag.ClOrdID, clOrdId], [Tag.OrderID, 1], [Tag.ExecID, seq], [Tag.ExecType, '0'], [Tag.OrdStatus, '0']])
const heartbeat = (seq: number) => buildMessage([[Tag.MsgType, '0'], ...header(seq)])
const testRequest = (seq: number) => buildMessage([[Tag.MsgType, '1'], ...header(seq), [Tag.TestReqID, 'T1']])

function reflex(t: Test): FixReflex {
  const r = new FixReflex(template)
  t.teardown(() => r.close())
  return r
}

/** The order as the TypeScript parser sees it. */
function parsed(bytes: Buffer) {
  const p = new FixParser()
  p.push(bytes)
  const m = p.next()
  if (m === null) throw new Error(`not a valid FIX message: ${bytes.toString('latin1')}`)
  return { m, counters: p.counters, rest: p.next() }
}

t.test('fires on the armed ExecutionReport after quiet in-sequence messages; the order is valid FIX', async (t) => {
  const r = reflex(t)
  r.arm(arm)
  t.notOk(r.feed(Buffer.concat([heartbeat(10), er(11, 6)])), 'a Heartbeat and the previous order\'s fill: quiet')
  t.ok(r.feed(er(12, 7)), 'the ExecutionReport for ClOrdID 7 with MsgSeqNum 12: the next order went out')
  const o = r.lastOrder()
  t.equal(o.seq, 20)
  t.equal(o.clOrdId, 8)
  t.equal(o.triggerSeq, 12)
  t.ok(o.sentNs > 0n)
  const { m, counters, rest } = parsed(o.message)
  t.equal(counters.badChecksum + counters.badBodyLength + counters.badHeader + counters.garbageBytes, 0, 'BodyLength and CheckSum right')
  t.equal(rest, null)
  t.equal(m.string(Tag.MsgType), 'D')
  t.equal(m.string(Tag.BeginString), 'FIX.4.4')
  t.equal(m.string(Tag.SenderCompID), 'CLIENT1')
  t.equal(m.string(Tag.TargetCompID), 'EXCH')
  t.equal(m.int(Tag.MsgSeqNum), 20)
  t.equal(m.int(Tag.ClOrdID), 8)
  t.equal(m.string(Tag.Symbol), 'KBX')
  t.equal(m.string(Tag.Price), '100.25')
  t.match(m.string(Tag.SendingTime), /^\d{8}-\d\d:\d\d:\d\d\.\d{3}$/)
  t.equal(m.string(Tag.TransactTime), m.string(Tag.SendingTime))
  t.equal(o.sendingTime.toString('latin1'), m.string(Tag.SendingTime))
  t.equal(o.body.toString('latin1'), `11=8\x0155=KBX\x0154=1\x0160=${m.string(Tag.SendingTime)}\x0138=100\x0140=2\x0144=100.25\x0159=0\x01`, 'body: the fields after SendingTime')
  const sentAgain = r.feed(er(13, 7))
  t.notOk(sentAgain, 'an arm fires once')
  t.same({ messages: r.counters.messages, sent: r.counters.sent }, { messages: 4, sent: 1 })
})

t.test('a message split across any number of pieces, and several in one piece', async (t) => {
  const stream = Buffer.concat([heartbeat(10), er(11, 6), er(12, 7), er(13, 7)])
  const r = reflex(t)
  r.arm(arm)
  const firedAt: number[] = []
  for (let i = 0; i < stream.length; i++) if (r.feed(stream.subarray(i, i + 1))) firedAt.push(i)
  const triggerEnd = heartbeat(10).length + er(11, 6).length + er(12, 7).length - 1
  t.same(firedAt, [triggerEnd], 'byte by byte: fired once, on the last byte of the trigger')
  t.equal(r.counters.messages, 4)

  const whole = reflex(t)
  whole.arm(arm)
  t.ok(whole.feed(stream), 'all four in one piece: fired')
  t.equal(whole.counters.messages, 4)
  t.equal(whole.lastOrder().triggerSeq, 12)
})

t.test('bad checksum, bad body length, garbage: skipped and counted like the TypeScript parser, never fired on', async (t) => {
  const badSum = er(12, 7)
  badSum[badSum.length - 2] = badSum[badSum.length - 2] === 0x30 ? 0x31 : 0x30
  const r = reflex(t)
  r.arm(arm)
  t.notOk(r.feed(Buffer.concat([heartbeat(10), er(11, 6), badSum])), 'the trigger with a wrong CheckSum does not fire')
  t.equal(r.counters.bad_checksum, 1)
  t.equal(r.counters.disarmed, 1, 'a framing error disarms')
  t.notOk(r.feed(er(12, 7)), 'disarmed until TypeScript arms it again')
  r.arm({ ...arm, expectSeq: 12 })
  t.ok(r.feed(er(12, 7)), 're-armed: the resent trigger fires')

  const good = er(12, 7)
  const s = good.toString('latin1')
  const badLength = Buffer.from(s.replace(/\x019=(\d+)\x01/, (_, n: string) => `\x019=${Number(n) + 5}\x01`), 'latin1')
  const r2 = reflex(t)
  r2.arm({ ...arm, expectSeq: 12 })
  t.notOk(r2.feed(Buffer.concat([badLength, heartbeat(13)])), 'a wrong BodyLength does not fire')
  t.equal(r2.counters.bad_body_length, 1)
  t.equal(r2.counters.messages, 1, 'the message after it is framed (resynchronised)')

  // the same corrupted stream, cut at random points, through both parsers: the same counts
  let seed = 7
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
  const parts: Buffer[] = []
  for (let i = 0; i < 200; i++) {
    const kind = Math.floor(random() * 6)
    const m = er(100 + i, i)
    if (kind === 0) m[m.length - 3] = m[m.length - 3]! ^ 1
    if (kind === 1) parts.push(Buffer.from('garbage', 'latin1'))
    if (kind === 2) parts.push(Buffer.from(m.toString('latin1').replace(/\x019=(\d+)\x01/, (_, n: string) => `\x019=${Number(n) - 3}\x01`), 'latin1'))
    else parts.push(m)
  }
  const stream = Buffer.concat(parts)
  const ts = new FixParser()
  const r3 = reflex(t)
  for (let at = 0; at < stream.length; ) {
    const n = 1 + Math.floor(random() * 300)
    const piece = stream.subarray(at, at + n)
    ts.push(piece)
    while (ts.next() !== null);
    r3.feed(piece)
    at += n
  }
  const c = r3.counters
  t.ok(ts.counters.badChecksum > 0 && ts.counters.badBodyLength > 0 && ts.counters.garbageBytes > 0, 'the stream has every kind of error')
  t.same(
    { messages: c.messages, badChecksum: c.bad_checksum, badBodyLength: c.bad_body_length, badHeader: c.bad_header, garbageBytes: c.garbage_bytes },
    ts.counters,
    'C framer and TypeScript parser agree on every count',
  )
})

t.test('anything but a quiet in-sequence message before the trigger leaves the answer to TypeScript', async (t) => {
  const cases: [string, Buffer][] = [
    ['a gap (MsgSeqNum above the expected)', Buffer.concat([heartbeat(10), er(12, 7)])],
    ['MsgSeqNum below the expected', er(9, 7)],
    ['PossDupFlag=Y', er(10, 7, [[Tag.PossDupFlag, 'Y']])],
    ['an admin message (TestRequest)', Buffer.concat([testRequest(10), er(11, 7)])],
    ['another SenderCompID', er(10, 7, [], 'OTHER')],
  ]
  for (const [what, bytes] of cases) {
    const r = reflex(t)
    r.arm(arm)
    t.notOk(r.feed(bytes), `${what}: no order`)
    t.equal(r.counters.disarmed, 1, `${what}: disarmed`)
    t.equal(r.counters.sent, 0)
  }
  const unarmed = reflex(t)
  t.notOk(unarmed.feed(er(10, 7)), 'never armed: never fires')
  t.equal(unarmed.counters.messages, 1)
})

/** Per piece: how many messages and errors of each kind the TypeScript parser and the C framer count. */
function bothCount(t: Test, pieces: Buffer[]) {
  const r = reflex(t)
  const p = new FixParser()
  return pieces.map((piece) => {
    r.feed(piece)
    p.push(piece)
    while (p.next() !== null);
    const c = r.counters
    return {
      ts: [p.counters.messages, p.counters.badChecksum, p.counters.badBodyLength, p.counters.badHeader, p.counters.garbageBytes],
      c: [c.messages, c.bad_checksum, c.bad_body_length, c.bad_header, c.garbage_bytes].map(Number),
    }
  })
}

const rawBody = (body: string) => {
  const b = Buffer.from(body.replaceAll('|', '\x01'), 'latin1')
  const msg = Buffer.concat([Buffer.from(`8=FIX.4.4\x019=${b.length}\x01`, 'latin1'), b])
  let sum = 0
  for (const x of msg) sum += x
  return Buffer.concat([msg, Buffer.from(`10=${String(sum % 256).padStart(3, '0')}\x01`, 'latin1')])
}

t.test('regression (issue 9 finding 1): the C framer and the TypeScript parser agree message by message', async (t) => {
  const valid = Buffer.from('383d4649582e342e3401393d32340133353d380134393d5448454d0135363d55530133343d310131303d32323001', 'hex')
  const empty = Buffer.from('383d4649582e342e3401393d300131303d32303001', 'hex')
  const pieces = [
    valid,
    empty,
    heartbeat(3),
    rawBody('35=0|49=A|56=B|'), // no MsgSeqNum
    rawBody('35=0|49=A|34=4|'), // no TargetCompID
    rawBody('35=0|56=B|34=4|'), // no SenderCompID
    rawBody('35=0|49=A|56=B|34=0|'),
    rawBody('49=A|35=0|56=B|34=4|'), // MsgType not first
    rawBody('35=ABC|49=A|56=B|34=4|'),
    rawBody('35=0|49=A|56=B|34=4|x=1|'),
    heartbeat(4),
  ]
  const counts = bothCount(t, pieces)
  counts.forEach((c, i) => t.same(c.c, c.ts, `after piece ${i}: C ${c.c.join(',')} = TS ${c.ts.join(',')}`))
  t.same(counts.at(-1)!.ts.slice(0, 4), [3, 0, 0, 8], 'three messages accepted, eight bad headers')
})

// Found by fuzzing (fuzz/findings/fix-framer/tag-10-in-body-split): a body holding `SOH10=nnnSOH8` was framed
// when it arrived whole, and rejected by the early-trailer rule when a segment ended right after that `8`.
t.test('regression: where a segment ends never changes a verdict (a trailer inside the body)', async (t) => {
  const inner = Buffer.from(
    '383d4649582e342e3401393d34300133353d300134393d455843480135363d434c49454e54310133343d320131303d31323301383d780131303d30353601',
    'hex',
  )
  const stream = Buffer.concat([inner, heartbeat(3)])
  const whole = bothCount(t, [stream]).at(-1)!
  t.same(whole.c, whole.ts, 'whole: C = TS')
  t.same(whole.ts.slice(0, 4), [1, 0, 1, 0], 'whole: the heartbeat is framed, the body holding a trailer is bad-body-length')
  for (let cut = 1; cut < stream.length; cut++) {
    const last = bothCount(t, [stream.subarray(0, cut), stream.subarray(cut)]).at(-1)!
    if (last.c.join() !== whole.c.join() || last.ts.join() !== whole.ts.join()) {
      t.fail(`cut at ${cut}: C ${last.c.join(',')} TS ${last.ts.join(',')}, whole ${whole.ts.join(',')}`)
      return
    }
  }
  t.pass('every cut frames what the whole stream frames')
})

t.test('header fields (SenderSubID, SenderLocationID) written where the session writes them: after 56, before 34', async (t) => {
  const r = new FixReflex({ ...template, header: Buffer.from('50=DESK1\x01142=LDN\x01', 'latin1') })
  t.teardown(() => r.close())
  r.arm(arm)
  t.ok(r.feed(er(10, 7)), 'fired')
  const o = r.lastOrder()
  const { m, counters } = parsed(o.message)
  t.equal(counters.badChecksum + counters.badBodyLength + counters.badHeader, 0, 'BodyLength and CheckSum right')
  t.same(Array.from({ length: 10 }, (_, i) => m.tags[i]), [8, 9, 35, 49, 56, 50, 142, 34, 52, 11])
  t.equal(m.string(50), 'DESK1')
  t.equal(m.string(142), 'LDN')
  t.match(o.body.toString('latin1'), /^11=8\x0155=KBX\x01/, 'the body kept for resends starts after SendingTime, as the session\'s')
  t.throws(() => new FixReflex({ ...template, header: Buffer.alloc(257, 0x41) }), /^set the FIX reflex header failed: EINVAL \(257 bytes: at most 256\)$/, 'over 256 bytes: refused')
})

t.test('the prepared template: byte for byte what the TypeScript writer makes, across digit counts of MsgSeqNum, ClOrdID and BodyLength', async (t) => {
  const r = reflex(t)
  const numbers = [1, 9, 10, 99, 100, 999, 1000, 99_999, 100_000, 2 ** 40, 2 ** 53 - 1]
  let expect = 1
  for (const seq of numbers) {
    for (const clOrdId of [numbers[numbers.length - 1 - numbers.indexOf(seq)]!, seq]) {
      r.arm({ clOrdId: 5, expectSeq: expect, nextSeq: seq, nextClOrdId: clOrdId })
      t.ok(r.feed(er(expect++, 5)), `seq ${seq}, ClOrdID ${clOrdId}: sent`)
      const o = r.lastOrder()
      const time = o.sendingTime.toString('latin1')
      const written = buildMessage([[Tag.MsgType, 'D'], [Tag.SenderCompID, 'CLIENT1'], [Tag.TargetCompID, 'EXCH'], [Tag.MsgSeqNum, seq], [Tag.SendingTime, time], [Tag.ClOrdID, clOrdId], [55, 'KBX'], [54, '1'], [Tag.TransactTime, time], [38, '100'], [40, '2'], [44, '100.25'], [59, '0']])
      t.equal(o.message.toString('latin1'), written.toString('latin1'), `seq ${seq}, ClOrdID ${clOrdId}: the same bytes`)
    }
  }
})
