// The receive loop's tracking (native/src/ab_track.c) driven frame by frame through kbx_ab_rx_ingest:
// wrap of 64-bit and 32-bit numbers, restarts with late old copies, session ends and the new session.
import t from 'tap'
import { buildUdpFrame } from '@kbx/net'
import { encodeFeedPayload, encodeMold } from './format.js'
import { ReceiveTracker } from './tracker.js'

const hosts = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', srcIp: '10.0.1.1', dstIp: '10.0.1.2', srcPort: 1, dstPort: 8080 }
const M64 = 1n << 64n
const mold = (sequence: bigint, session = 'WRAPSESS00', count = 1) =>
  buildUdpFrame({ ...hosts, payload: encodeMold({ session, sequence, messages: Array.from({ length: count }, () => Buffer.from('x')) }) })
const moldEnd = (next: bigint, session: string) => buildUdpFrame({ ...hosts, payload: encodeMold({ session, sequence: next, messages: [], endOfSession: true }) })
const optiq = (sequence: bigint, stream = 0) => buildUdpFrame({ ...hosts, payload: encodeFeedPayload('optiq', stream, sequence) })
const ranges = (gaps: { stream: string; from: bigint; to: bigint }[]) => gaps.map((g) => `${g.stream}:${g.from}-${g.to}`)

t.test('finding 3: tracking across 2^64 (window 64): 2^64−10, +5, +100, +69', async (t) => {
  const rx = new ReceiveTracker({ format: 'moldudp64', window: 64, resetDistance: 1n << 20n })
  t.teardown(() => rx.close())
  const s = M64 - 10n
  const sent = [s, s + 5n, s + 105n, s + 174n].map((n) => BigInt.asUintN(64, n))
  for (const n of sent) t.ok(rx.ingest(mold(n)), `${n} delivered`)
  const gaps = [...rx.take().gaps, ...rx.flush().gaps]
  const c = rx.counters()
  t.equal(c.repeated, 0n, 'nothing counted as repeated (the reproducer gave 1)')
  t.equal(c.resets, 0n, 'passing 2^64 is no restart')
  const wrap = (n: bigint) => BigInt.asUintN(64, n)
  t.same(ranges(gaps), [`WRAPSESS00:${wrap(s + 1n)}-${wrap(s + 4n)}`, `WRAPSESS00:${wrap(s + 6n)}-${wrap(s + 104n)}`, `WRAPSESS00:${wrap(s + 106n)}-${wrap(s + 173n)}`], 'every hole once, in raw numbers across the wrap')
  t.equal(c.gap_messages, 171n, '175 numbers, 4 delivered, 171 lost')
})

t.test('MoldUDP64 to the last number: 2^64 − 1 is tracked like any other', async (t) => {
  const rx = new ReceiveTracker({ format: 'moldudp64', window: 64 })
  t.teardown(() => rx.close())
  for (const n of [M64 - 5n, M64 - 4n, M64 - 1n]) rx.ingest(mold(n))
  rx.ingest(mold(M64 - 3n), 'B') // late, inside the window
  t.same(ranges(rx.flush().gaps), [`WRAPSESS00:${M64 - 2n}-${M64 - 2n}`], 'the one hole, 2^64 − 2')
  const c = rx.counters()
  t.same([c.delivered, c.late_fills, c.repeated, c.gap_messages], [4n, 1n, 0n, 1n])
})

t.test('optiq restart: followed, old holes reported once, late old copies still fill, no billions lost', async (t) => {
  const rx = new ReceiveTracker({ format: 'optiq', window: 64, resetDistance: 1n << 20n })
  t.teardown(() => rx.close())
  const old = 3_000_000n
  for (let n = old; n < old + 20n; n++) if (n !== old + 10n && n !== old + 15n && n !== old + 19n) rx.ingest(optiq(n))
  // Line A restarts at 1; line B still carries old + 15 and old + 19 (A lost them), then restarts too.
  for (let n = 1n; n <= 5n; n++) rx.ingest(optiq(n))
  rx.ingest(optiq(old + 15n), 'B')
  rx.ingest(optiq(old + 19n), 'B')
  for (let n = 1n; n <= 5n; n++) rx.ingest(optiq(n), 'B') // duplicates: the XDP program never delivers them
  for (let n = 6n; n <= 100n; n++) if (n !== 50n) rx.ingest(optiq(n))
  const taken = rx.take()
  t.same(taken.events, [{ kind: 'restart', stream: '1000', from: old + 18n, to: 1n }], 'one restart event: newest before, first after')
  const gaps = [...taken.gaps, ...rx.flush().gaps]
  t.same(ranges(gaps), [`1000:${old + 10n}-${old + 10n}`, '1000:50-50'], 'the hole of the old numbering and the new one; the reserve is no gap')
  const c = rx.counters()
  t.equal(c.resets, 1n)
  t.equal(c.old_epoch, 2n, 'two late copies of the old numbering placed')
  t.equal(c.gap_messages, 2n, 'two numbers lost, not billions')
  t.equal(c.repeated, 5n, 'the duplicates fed here are seen as such')
})

t.test('MoldUDP64 session end and the new session that follows it', async (t) => {
  const rx = new ReceiveTracker({ format: 'moldudp64', window: 64 })
  t.teardown(() => rx.close())
  for (const n of [1n, 2n, 4n]) rx.ingest(mold(n, 'OLDSESSION'))
  rx.ingest(moldEnd(7n, 'OLDSESSION')) // the numbers go up to 6: 3, 5, 6 are lost
  t.same(rx.take(), { gaps: [], events: [{ kind: 'sessionEnd', stream: 'OLDSESSION', next: 7n }] }, 'the end is reported; its holes wait for the other line')
  rx.ingest(mold(1n, 'NEWSESSION'))
  rx.ingest(moldEnd(7n, 'OLDSESSION'), 'B')
  const taken = rx.take()
  t.same(taken.events.map((e) => ({ ...e, key: undefined })), [
    { kind: 'newSession', stream: 'NEWSESSION', previous: 'OLDSESSION', from: 7n, to: 1n, key: undefined },
    { kind: 'sessionClosed', stream: 'OLDSESSION', key: undefined },
  ], 'the new session follows the ended one; the end on both lines closes the old one')
  t.same(ranges(taken.gaps), ['OLDSESSION:3-3', 'OLDSESSION:5-6'], 'the end on both lines closes the old session: its holes, up to the announced end')
  rx.ingest(mold(2n, 'NEWSESSION', 3))
  t.same(rx.flush().gaps, [], 'the new session has no holes')
  const c = rx.counters()
  t.same([c.sessions_ended, c.new_sessions, c.end_copies, c.messages, c.gap_messages, c.sessions_closed], [1n, 1n, 2n, 7n, 3n, 1n])
})

t.test('closed sessions leave the table: a long run of sessions never fills it', async (t) => {
  const rx = new ReceiveTracker({ format: 'moldudp64', window: 64, maxStreams: 2 })
  t.teardown(() => rx.close())
  for (let session = 0; session < 50; session++) {
    const name = `SESS${String(session).padStart(6, '0')}`
    for (let n = 1n; n <= 20n; n++) if (n !== 7n) rx.ingest(mold(n, name))
    rx.ingest(moldEnd(21n, name))
    rx.ingest(moldEnd(21n, name), 'B')
  }
  const gaps = [...rx.take().gaps, ...rx.flush().gaps]
  const c = rx.counters()
  t.same([c.untracked, c.streams, c.sessions_closed, c.new_sessions, c.delivered], [0n, 50n, 50n, 49n, 50n * 19n], 'fifty sessions through a table of two')
  t.equal(gaps.length, 50, 'each session\'s hole reported once')
})

t.test('optiq across the u32 wrap: holes on both sides of it', async (t) => {
  const rx = new ReceiveTracker({ format: 'optiq', window: 64 })
  t.teardown(() => rx.close())
  const top = 0xffffffffn
  for (const n of [top - 3n, top - 1n, 1n, 3n]) rx.ingest(optiq(n))
  t.same(ranges(rx.flush().gaps), [`1000:${top - 2n}-${top - 2n}`, `1000:${top}-0`, '1000:2-2'], 'one hole runs over the wrap')
  t.equal(rx.counters().resets, 0n)
})

t.test('restarts to the same numbers again and again (each session 1..3000): each one a restart', async (t) => {
  const rx = new ReceiveTracker({ format: 'optiq', window: 256, resetDistance: 1024n })
  t.teardown(() => rx.close())
  for (let session = 0; session < 4; session++) for (let n = 1n; n <= 3000n; n++) if (n !== 77n) rx.ingest(optiq(n))
  const taken = [rx.take(), rx.flush()]
  t.same(taken.flatMap((x) => x.events).map((e) => e.kind), ['restart', 'restart', 'restart'])
  t.same(ranges(taken.flatMap((x) => x.gaps)), ['1000:77-77', '1000:77-77', '1000:77-77', '1000:77-77'], 'the hole of every session, nothing else')
  const c = rx.counters()
  t.same([c.delivered, c.repeated, c.old_epoch, c.after_gap], [4n * 2999n, 0n, 0n, 0n])
})

t.test('a straggler of the old numbering long after a restart: not tracked, no restart back', async (t) => {
  const rx = new ReceiveTracker({ format: 'optiq', window: 64, resetDistance: 1n << 20n })
  t.teardown(() => rx.close())
  for (let n = 3_000_000n; n < 3_000_010n; n++) rx.ingest(optiq(n))
  for (let n = 1n; n <= 200n; n++) rx.ingest(optiq(n))
  rx.ingest(optiq(3_000_005n), 'B')
  rx.ingest(optiq(201n))
  const c = rx.counters()
  t.same([c.resets, c.old_epoch, c.unplaced, c.repeated], [1n, 1n, 1n, 0n], 'one restart; the straggler counted, not placed')
  t.same(rx.flush().gaps, [], 'and no gap')
})

t.test('frames taken as the XDP program takes them (kbx_parse.h): up to two VLAN tags; three tags or a fragment are not feed', async (t) => {
  const rx = new ReceiveTracker({ format: 'optiq' })
  t.teardown(() => rx.close())
  const tagged = (sequence: bigint, vlans: number[]) =>
    buildUdpFrame({ ...hosts, vlans, outerVlanTpid: 0x88a8, payload: encodeFeedPayload('optiq', 0, sequence) })
  t.ok(rx.ingest(tagged(1n, [])), 'untagged')
  t.ok(rx.ingest(tagged(2n, [10])), 'one 802.1Q tag')
  t.ok(rx.ingest(tagged(3n, [10, 20])), 'two tags: 802.1ad outside 802.1Q')
  t.notOk(rx.ingest(tagged(4n, [10, 20, 30])), 'three tags')
  // The flags and offset field of the IPv4 header (ab_rx reads no IPv4 checksum): the UDP header and feed
  // payload stay where they were, so only the fragment rule refuses them.
  const later = tagged(5n, [])
  later.writeUInt16BE(1, 20) // offset 8 bytes
  t.notOk(rx.ingest(later), 'a later IPv4 fragment')
  const first = tagged(6n, [])
  first.writeUInt16BE(0x2000, 20) // More Fragments, offset 0
  t.notOk(rx.ingest(first), 'a first IPv4 fragment')
  const c = rx.counters()
  t.same([c.delivered, c.not_feed], [3n, 3n])
  t.same(rx.flush().gaps, [], '1..3 in order: no gap')
})
