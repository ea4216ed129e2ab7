import t from 'tap'
import { FixParser, FixWriter, MsgType, PRICE_SCALE, Tag, buildMessage, parsePrice } from './codec.js'

const bar = (s: string) => Buffer.from(s.replaceAll('|', '\x01'), 'latin1')

// A Logon whose BodyLength and CheckSum were computed independently (sum of bytes mod 256).
function reference(body: string): Buffer {
  const b = bar(body)
  const head = bar(`8=FIX.4.4|9=${b.length}|`)
  const msg = Buffer.concat([head, b])
  let sum = 0
  for (const x of msg) sum += x
  return Buffer.concat([msg, bar(`10=${String(sum % 256).padStart(3, '0')}|`)])
}

const logonBody = '35=A|49=CLIENT1|56=EXCH|34=1|52=20260101-00:00:00.000|98=0|108=30|'

t.test('a known message: BodyLength and CheckSum', (t) => {
  // the FIX Logon example from the FIX literature (Wikipedia: Financial Information eXchange)
  const known = bar('8=FIX.4.2|9=65|35=A|49=SERVER|56=CLIENT|34=177|52=20090107-18:15:16|98=0|108=30|10=062|')
  const p = new FixParser()
  p.push(known)
  const m = p.next()
  t.ok(m, 'parsed')
  t.equal(m!.msgType, MsgType.Logon)
  t.equal(m!.int(Tag.HeartBtInt), 30)
  t.equal(m!.string(Tag.SenderCompID), 'SERVER')
  t.equal(m!.end - m!.start, known.length)
  t.equal(p.next(), null)

  const w = new FixWriter('FIX.4.2')
  w.begin('A').str(49, 'SERVER').str(56, 'CLIENT').int(34, 177).str(52, '20090107-18:15:16').int(98, 0).int(108, 30)
  t.same(Buffer.from(w.finish()), known, 'the writer produces the same bytes')
  t.end()
})

t.test('writer output matches an independent BodyLength/CheckSum computation', (t) => {
  t.same(buildMessage([[35, 'A'], [49, 'CLIENT1'], [56, 'EXCH'], [34, 1], [52, '20260101-00:00:00.000'], [98, 0], [108, 30]]), reference(logonBody))
  t.end()
})

t.test('split at every byte boundary and concatenated messages', (t) => {
  const a = reference(logonBody)
  const b = reference('35=D|49=CLIENT1|56=EXCH|34=2|52=20260101-00:00:00.000|11=42|55=ABC|54=1|60=20260101-00:00:00.000|38=100|40=2|44=101.25|')
  const stream = Buffer.concat([a, b, a])
  for (let cut = 1; cut < stream.length; cut++) {
    const p = new FixParser({ capacity: 64 })
    const types: number[] = []
    p.push(stream.subarray(0, cut))
    for (let m = p.next(); m; m = p.next()) types.push(m.msgType)
    p.push(stream.subarray(cut))
    for (let m = p.next(); m; m = p.next()) types.push(m.msgType)
    if (types.length !== 3) {
      t.fail(`cut at ${cut}: ${types.length} messages`)
      return t.end()
    }
  }
  const p = new FixParser()
  for (const byte of stream) p.push(Uint8Array.of(byte))
  const got: number[] = []
  for (let m = p.next(); m; m = p.next()) got.push(m.int(Tag.MsgSeqNum))
  t.same(got, [1, 2, 1], 'byte by byte: all three, in order')
  t.equal(p.counters.garbageBytes, 0)
  t.end()
})

t.test('bad checksum is dropped and the next message still parses', (t) => {
  const good = reference(logonBody)
  const bad = Buffer.from(good)
  bad[bad.length - 2] = bad[bad.length - 2] === 0x30 ? 0x31 : 0x30
  const p = new FixParser()
  const errors: string[] = []
  p.onError = (e) => errors.push(e)
  p.push(Buffer.concat([bad, good]))
  const m = p.next()
  t.ok(m)
  t.equal(m!.end - m!.start, good.length)
  t.equal(p.next(), null)
  t.same(errors, ['bad-checksum'])
  t.equal(p.counters.badChecksum, 1)
  t.end()
})

t.test('wrong BodyLength (too short and too long) is detected', (t) => {
  const good = reference(logonBody)
  const body = bar(logonBody)
  for (const delta of [-3, 3]) {
    const head = bar(`8=FIX.4.4|9=${body.length + delta}|`)
    const msg = Buffer.concat([head, body])
    let sum = 0
    for (const x of msg) sum += x
    const bad = Buffer.concat([msg, bar(`10=${String(sum % 256).padStart(3, '0')}|`)])
    const p = new FixParser()
    const errors: string[] = []
    p.onError = (e) => errors.push(e)
    p.push(Buffer.concat([bad, good]))
    const m = p.next()
    t.ok(m, `delta ${delta}: the following good message parses`)
    t.equal(m?.int(Tag.MsgSeqNum), 1)
    t.ok(errors.includes('bad-body-length'), `delta ${delta}: ${errors.join(',')}`)
    t.equal(p.next(), null)

    // a too-long BodyLength is not waited on once the next message starts inside its declared body, but
    // not before: a segment that ends right after a trailer must not decide it (fuzz finding tag-10-in-body-split)
    if (delta > 0) {
      const alone = new FixParser()
      alone.push(bad)
      t.equal(alone.next(), null)
      t.equal(alone.counters.badBodyLength, 0, 'nothing after the trailer yet: waits')
      alone.push(good.subarray(0, 1))
      t.equal(alone.next(), null)
      t.equal(alone.counters.badBodyLength, 1, 'the next message starts: bad-body-length at once')
    }
  }
  t.end()
})

t.test('garbage between messages is skipped and counted', (t) => {
  const good = reference(logonBody)
  const p = new FixParser()
  p.push(Buffer.concat([Buffer.from('hello 8=X 9=1'), good, Buffer.from('\x01\x01zz8=FI'), good]))
  t.ok(p.next())
  t.ok(p.next())
  t.equal(p.next(), null)
  t.ok(p.counters.garbageBytes >= 13 + 8)
  t.equal(p.counters.messages, 2)
  t.end()
})

t.test('malformed fields inside a frame with a valid checksum are rejected', (t) => {
  const p = new FixParser()
  p.push(reference('35=0|49=A|56=B|34=x|junk|'))
  p.push(reference('49=A|35=0|56=B|34=1|'))
  t.equal(p.next(), null)
  t.equal(p.counters.badHeader, 2)
  t.end()
})

t.test('fixed-point prices', (t) => {
  const b = (s: string) => Buffer.from(s)
  t.equal(parsePrice(b('101.25'), 0, 6), 101.25 * PRICE_SCALE)
  t.equal(parsePrice(b('-0.00000001'), 0, 11), -1)
  t.equal(parsePrice(b('7'), 0, 1), 7 * PRICE_SCALE)
  t.ok(Number.isNaN(parsePrice(b('1.000000001'), 0, 11)), 'more than 8 decimals')
  t.ok(Number.isNaN(parsePrice(b('1.2.3'), 0, 5)))
  t.ok(Number.isNaN(parsePrice(b(''), 0, 0)))
  const w = new FixWriter()
  for (const v of [10125000000, 1, 100000000, 5, 123456789012]) {
    const p = new FixParser()
    p.push(Buffer.from(w.begin('D').str(49, 'A').str(56, 'B').int(34, 1).price(Tag.Price, v).finish()))
    t.equal(p.next()?.price(Tag.Price), v, `round trip ${v}`)
  }
  t.end()
})

// Issue 9, finding 1: after a valid message, an empty body (9=0) was accepted with the previous message's
// MsgType (tags[2] left over) and MsgSeqNum −1. The C framer rejects it; so must we.
t.test('regression: an empty body after a valid message is rejected, not read with stale fields', (t) => {
  const valid = Buffer.from('383d4649582e342e3401393d32340133353d380134393d5448454d0135363d55530133343d310131303d32323001', 'hex')
  const empty = Buffer.from('383d4649582e342e3401393d300131303d32303001', 'hex')
  const p = new FixParser()
  const errors: string[] = []
  p.onError = (e) => errors.push(e)
  p.push(Buffer.concat([valid, empty]))
  const m = p.next()
  t.ok(m, 'the valid message')
  t.equal(m!.msgType, MsgType.ExecutionReport)
  t.equal(m!.int(Tag.MsgSeqNum), 1)
  t.equal(p.next(), null, 'the empty body is not a message')
  t.same(errors, ['bad-header'])
  t.equal(p.counters.messages, 1)
  t.equal(p.counters.badHeader, 1)
  t.end()
})

t.test('required header fields: MsgType first, SenderCompID, TargetCompID, MsgSeqNum ≥ 1', (t) => {
  const cases: [string, boolean][] = [
    ['35=0|49=A|56=B|34=1|', true],
    ['35=0|49=A|56=B|', false], // no MsgSeqNum
    ['35=0|49=A|34=1|', false], // no TargetCompID
    ['35=0|56=B|34=1|', false], // no SenderCompID
    ['35=0|49=A|56=B|34=0|', false], // MsgSeqNum 0
    ['35=0|49=A|56=B|34=-1|', false],
    ['35=0|49=A|56=B|34=1234567890123456|', false], // more than 15 digits
    ['35=|49=A|56=B|34=1|', false], // empty MsgType
    ['35=ABC|49=A|56=B|34=1|', false], // MsgType longer than 2
    ['35=AE|49=A|56=B|34=7|', true],
  ]
  for (const [body, ok] of cases) {
    const p = new FixParser()
    p.push(reference(body))
    t.equal(p.next() !== null, ok, `${body} ${ok ? 'accepted' : 'rejected'}`)
    t.equal(p.counters.badHeader, ok ? 0 : 1)
  }
  t.end()
})

t.test('no state carried between messages: a message missing a field never shows the previous one', (t) => {
  const p = new FixParser()
  p.push(Buffer.concat([reference('35=8|49=A|56=B|34=5|11=42|'), reference('35=0|49=A|56=B|34=6|')]))
  t.equal(p.next()!.int(Tag.ClOrdID), 42)
  const hb = p.next()!
  t.equal(hb.msgType, MsgType.Heartbeat)
  t.equal(hb.int(Tag.ClOrdID), -1, 'ClOrdID of the previous message is not visible')
  t.equal(hb.count, 6)
  t.end()
})
