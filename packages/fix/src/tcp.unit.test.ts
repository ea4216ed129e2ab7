// The userspace TCP state machine (native/src/tcp_conn.c, tcp_input.c) driven by crafted segments: no sockets.
import t from 'tap'
import type { Test } from 'tap'
import { TcpFlags, buildArpFrame } from '@kbx/net'
import { UserTcp } from './tcp.js'
import type { ParsedFrameOk } from '@kbx/net'
import { IRS, ISN, MSS, PEER, S, US, established, parse, segment, wsOption } from './tcp-peer.js'
import type { Conn } from './tcp-peer.js'

const { FIN, SYN, RST, PSH, ACK, ECE, CWR } = TcpFlags

t.test('active open: SYN with MSS and window scale, valid checksums; SYN-ACK → ESTABLISHED + ACK', (t) => {
  const tcp = UserTcp.create({ local: US, remote: PEER, isn: ISN, mss: MSS, ecn: true })
  t.teardown(() => tcp.close())
  tcp.connect(S)
  const [syn] = parse(tcp.frames())
  t.ok(syn)
  t.equal(syn!.tcp!.flags, SYN | ECE | CWR, 'SYN asking for ECN')
  t.equal(syn!.tcp!.seq, ISN)
  t.ok(syn!.tcp!.checksumValid)
  t.ok(syn!.ipv4!.checksumValid)
  t.same([...syn!.tcp!.options.subarray(0, 4)], [2, 4, MSS >> 8, MSS & 0xff], 'MSS option')
  t.equal(syn!.tcp!.options[5], 3, 'window scale option')
  t.equal(tcp.stats().stateName, 'syn-sent')

  tcp.input(segment({ seq: IRS, ack: ISN + 1, flags: SYN | ACK | ECE, options: wsOption(1400, 7) }), S + 1000n)
  const [ack] = parse(tcp.frames())
  t.equal(ack!.tcp!.flags, ACK)
  t.equal(ack!.tcp!.ack, IRS + 1)
  t.equal(ack!.tcp!.seq, (ISN + 1) >>> 0)
  const st = tcp.stats()
  t.equal(st.stateName, 'established')
  t.equal(st.ecn, 1, 'ECN negotiated')
  t.equal(st.snd_wnd, 65535, 'the SYN-ACK window is not scaled')
  t.end()
})

t.test('malformed and truncated TCP options in the SYN-ACK do not break the handshake', (t) => {
  for (const options of [Buffer.from([2, 0, 0, 0]), Buffer.from([3, 9, 1, 1]), Buffer.from([1, 1, 1, 2]), Buffer.from([8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 200, 0])]) {
    const c = established(t, { synOptions: options })
    t.equal(c.tcp.stats().stateName, 'established', `options ${options.toString('hex')}`)
  }
  t.end()
})

t.test('SYN-SENT: a bad ACK gets a RST; a RST with an acceptable ACK refuses the connection', (t) => {
  const tcp = UserTcp.create({ local: US, remote: PEER, isn: ISN })
  t.teardown(() => tcp.close())
  tcp.connect(S)
  tcp.frames()
  tcp.input(segment({ seq: IRS, ack: ISN + 100, flags: SYN | ACK }), S)
  const [rst] = parse(tcp.frames())
  t.equal(rst!.tcp!.flags & RST, RST)
  t.equal(rst!.tcp!.seq, (ISN + 100) >>> 0)
  t.equal(tcp.stats().stateName, 'syn-sent')
  tcp.input(segment({ seq: 0, ack: ISN + 1, flags: RST | ACK }), S)
  t.equal(tcp.stats().stateName, 'closed')
  t.equal(tcp.stats().closeReason, 'refused')
  t.end()
})

t.test('SYN retransmitted on timeout', (t) => {
  const tcp = UserTcp.create({ local: US, remote: PEER, isn: ISN })
  t.teardown(() => tcp.close())
  tcp.connect(S)
  tcp.frames()
  tcp.poll(S + S / 2n)
  t.equal(tcp.frames().length, 0, 'not before the 1 s initial RTO')
  tcp.poll(2n * S + 1n)
  const [syn] = parse(tcp.frames())
  t.equal(syn!.tcp!.flags & SYN, SYN)
  t.equal(tcp.stats().timeouts, 1)
  t.end()
})

t.test('in-order data delivered with an immediate ACK; out-of-order held and re-ACKed', (t) => {
  const c = established(t)
  const [ack] = c.feed({ seq: c.peerSeq, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('hello') })
  t.equal(ack!.tcp!.ack, c.peerSeq + 5)
  t.equal(c.tcp.read().toString(), 'hello')
  const [dup] = c.feed({ seq: c.peerSeq + 10, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('later') })
  t.equal(dup!.tcp!.ack, c.peerSeq + 5, 'ACK of what we have')
  t.equal(c.tcp.read().length, 0, 'nothing delivered')
  t.equal(c.tcp.stats().ooo_held, 1)
  // a segment overlapping what we already have: only the new bytes are delivered, then the held ones
  c.feed({ seq: c.peerSeq + 3, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('lo worl') })
  t.equal(c.tcp.read().toString(), ' worllater')
  t.end()
})

t.test('held ACK: rides on the reply written before the next transmission, else goes out alone when released', (t) => {
  const c = established(t)
  c.tcp.holdAck(true)
  t.same(c.feed({ seq: c.peerSeq, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('order') }), [], 'no pure ACK while held')
  t.equal(c.tcp.read().toString(), 'order')
  const segsBefore = c.tcp.stats().segs_out
  c.tcp.holdAck(false)
  c.tcp.write(Buffer.from('ack!'))
  c.tcp.poll(c.now)
  const reply = c.out()
  t.equal(reply.length, 1, 'one segment: the reply')
  t.equal(reply[0]!.payloadLength, 4, 'the reply bytes')
  t.equal(reply[0]!.tcp!.ack, c.peerSeq + 5, 'it acknowledges the received bytes')
  t.equal(c.tcp.stats().segs_out, segsBefore + 1, 'no separate ACK was built')

  c.tcp.holdAck(true)
  t.same(c.feed({ seq: c.peerSeq + 5, ack: ISN + 1 + 4, flags: ACK | PSH, payload: Buffer.from('more') }), [])
  c.tcp.holdAck(false)
  const [ack] = c.out()
  t.equal(ack!.tcp!.flags, ACK, 'no reply: a pure ACK once released')
  t.equal(ack!.tcp!.ack, c.peerSeq + 9)

  c.tcp.holdAck(true)
  const [dup] = c.feed({ seq: c.peerSeq + 20, ack: ISN + 1 + 4, flags: ACK | PSH, payload: Buffer.from('gap') })
  t.equal(dup!.tcp!.ack, c.peerSeq + 9, 'duplicate ACKs for out-of-order data are never held')
  t.end()
})

t.test('out-of-window segments are ACKed and dropped; bad checksums dropped silently', (t) => {
  const c = established(t)
  const [ack] = c.feed({ seq: c.peerSeq + 10_000_000, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('x') })
  t.equal(ack!.tcp!.ack, c.peerSeq)
  t.equal(c.tcp.stats().out_of_window, 1)
  t.equal(c.feed({ seq: c.peerSeq, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('abc'), badChecksum: true }).length, 0)
  t.equal(c.tcp.stats().bad_checksum, 1)
  t.equal(c.tcp.read().length, 0)
  // an ACK for data never sent: ACK back, drop
  const [back] = c.feed({ seq: c.peerSeq, ack: ISN + 1000, flags: ACK })
  t.equal(back!.tcp!.ack, c.peerSeq)
  t.equal(c.tcp.stats().stateName, 'established')
  t.end()
})

t.test('RST: in window but not exact → challenge ACK; exact → reset; SYN → challenge ACK', (t) => {
  const c = established(t)
  const [challenge] = c.feed({ seq: c.peerSeq + 100, flags: RST })
  t.equal(challenge!.tcp!.flags, ACK)
  t.equal(c.tcp.stats().challenge_acks, 1)
  t.equal(c.tcp.stats().stateName, 'established')
  t.equal(c.feed({ seq: c.peerSeq + 10_000_000, flags: RST }).length, 0, 'out-of-window RST ignored')
  const [synChallenge] = c.feed({ seq: c.peerSeq, flags: SYN })
  t.equal(synChallenge!.tcp!.flags, ACK)
  t.equal(c.tcp.stats().challenge_acks, 2)
  c.feed({ seq: c.peerSeq, flags: RST })
  t.equal(c.tcp.stats().stateName, 'closed')
  t.equal(c.tcp.stats().closeReason, 'reset')
  // closed: anything but a RST is answered with a RST
  const [rst] = c.feed({ seq: c.peerSeq, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('late') })
  t.equal(rst!.tcp!.flags & RST, RST)
  t.end()
})

function sendData(c: Conn, bytes: number): ParsedFrameOk[] {
  t.equal(c.tcp.write(Buffer.alloc(bytes, 0x61)), bytes)
  c.tcp.poll(c.now)
  return c.out()
}

t.test('data out in MSS segments; three duplicate ACKs → fast retransmit', (t) => {
  const c = established(t)
  const segs = sendData(c, 5 * MSS)
  t.equal(segs.length, 5)
  t.same(segs.map((s) => s.payloadLength), [MSS, MSS, MSS, MSS, MSS])
  t.ok(segs.every((s) => s.tcp!.checksumValid))
  const second = (ISN + 1 + MSS) >>> 0
  t.equal(segs[1]!.tcp!.seq, second)
  c.feed({ seq: c.peerSeq, ack: second, flags: ACK, window: 512 })
  for (let i = 0; i < 2; i++) t.equal(c.feed({ seq: c.peerSeq, ack: second, flags: ACK, window: 512 }).length, 0)
  const [retx] = c.feed({ seq: c.peerSeq, ack: second, flags: ACK, window: 512 })
  t.equal(retx?.tcp?.seq, second, 'the missing segment again')
  t.equal(retx?.payloadLength, MSS)
  const st = c.tcp.stats()
  t.equal(st.dup_acks, 3)
  t.equal(st.fast_retransmits, 1)
  t.equal(st.retransmits, 1)
  c.feed({ seq: c.peerSeq, ack: ISN + 1 + 5 * MSS, flags: ACK, window: 512 })
  t.equal(c.tcp.stats().unacked, 0, 'all acknowledged')
  t.end()
})

t.test('retransmission on timeout, with exponential backoff', (t) => {
  const c = established(t)
  t.equal(sendData(c, 100).length, 1)
  c.now += S / 10n
  c.tcp.poll(c.now)
  t.equal(c.out().length, 0, 'not yet')
  c.now += S
  c.tcp.poll(c.now)
  const [retx] = c.out()
  t.equal(retx?.tcp?.seq, (ISN + 1) >>> 0)
  t.equal(retx?.payloadLength, 100)
  t.equal(c.tcp.stats().timeouts, 1)
  const rto = c.tcp.stats().rto_us
  c.now += BigInt(rto) * 1000n + 1n
  c.tcp.poll(c.now)
  t.equal(c.out().length, 0, 'the second timeout waits twice as long')
  c.now += BigInt(rto) * 1000n
  c.tcp.poll(c.now)
  t.equal(c.out().length, 1)
  c.feed({ seq: c.peerSeq, ack: ISN + 101, flags: ACK })
  t.equal(c.tcp.stats().unacked, 0)
  t.end()
})

t.test('a deliberately dropped segment (test hook) is recovered by retransmission', (t) => {
  const c = established(t, { dropTxNth: 1 })
  t.equal(sendData(c, 300).length, 0, 'the first data segment never left')
  t.equal(c.tcp.stats().tx_dropped_by_hook, 1)
  c.now += 2n * S
  c.tcp.poll(c.now)
  const [retx] = c.out()
  t.equal(retx?.payloadLength, 300)
  t.equal(c.tcp.stats().retransmits, 1)
  t.end()
})

t.test("the peer's receive window is respected (window scale applied)", (t) => {
  const c = established(t, { window: 65535, ws: 0 })
  c.feed({ seq: c.peerSeq, ack: ISN + 1, flags: ACK, window: 2500 })
  const segs = sendData(c, 10 * MSS)
  t.equal(segs.reduce((n, s) => n + s.payloadLength, 0), 2500, 'exactly the window')
  // the ACK of those 2500 bytes opens a window of 1000: exactly that much more goes out
  const more = c.feed({ seq: c.peerSeq, ack: ISN + 1 + 2500, flags: ACK, window: 1000 })
  t.equal(more.reduce((n, s) => n + s.payloadLength, 0), 1000)
  t.equal(c.tcp.stats().unsent, 10 * MSS - 3500)
  t.end()
})

t.test('ECN: CE marks echoed with ECE; ECE halves the congestion window once and sets CWR', (t) => {
  const c = established(t, { ecn: true })
  const [ack] = c.feed({ seq: c.peerSeq, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('ce'), tos: 3 })
  t.equal(ack!.tcp!.flags & ECE, ECE, 'ECE on our ACK')
  t.equal(c.tcp.stats().ecn_ce_in, 1)
  const [ack2] = c.feed({ seq: c.peerSeq + 2, ack: ISN + 1, flags: ACK | PSH | CWR, payload: Buffer.from('ok') })
  t.equal(ack2!.tcp!.flags & ECE, 0, 'CWR from the peer stops the echo')

  const first = sendData(c, MSS)
  t.equal(first[0]!.ipv4!.tos & 3, 2, 'data sent ECT(0)')
  const before = c.tcp.stats().cwnd
  c.feed({ seq: c.peerSeq + 4, ack: ISN + 1 + MSS, flags: ACK | ECE })
  const after = c.tcp.stats().cwnd
  t.ok(after < before, `cwnd ${before} → ${after}`)
  t.equal(c.tcp.stats().cwnd_reductions, 1)
  c.feed({ seq: c.peerSeq + 4, ack: ISN + 1 + MSS, flags: ACK | ECE })
  t.equal(c.tcp.stats().cwnd_reductions, 1, 'once per window')
  const [next] = sendData(c, 10)
  t.equal(next!.tcp!.flags & CWR, CWR, 'CWR on the next new data')
  t.end()
})

t.test('FIN both ways: we close first (FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT → CLOSED)', (t) => {
  const c = established(t)
  c.tcp.shutdown()
  const [fin] = c.out()
  t.equal(fin!.tcp!.flags, FIN | ACK)
  t.equal(c.tcp.stats().stateName, 'fin-wait-1')
  c.feed({ seq: c.peerSeq, ack: ISN + 2, flags: ACK })
  t.equal(c.tcp.stats().stateName, 'fin-wait-2')
  const [ack] = c.feed({ seq: c.peerSeq, ack: ISN + 2, flags: FIN | ACK })
  t.equal(ack!.tcp!.ack, c.peerSeq + 1)
  t.equal(c.tcp.stats().stateName, 'time-wait')
  c.now += 2n * S
  c.tcp.poll(c.now)
  t.equal(c.tcp.stats().stateName, 'closed')
  t.equal(c.tcp.stats().closeReason, 'closed')
  t.end()
})

t.test('FIN both ways: the peer closes first (CLOSE-WAIT → LAST-ACK → CLOSED), FIN retransmitted on timeout', (t) => {
  const c = established(t)
  const [ack] = c.feed({ seq: c.peerSeq, ack: ISN + 1, flags: FIN | ACK })
  t.equal(ack!.tcp!.ack, c.peerSeq + 1)
  t.equal(c.tcp.stats().stateName, 'close-wait')
  c.tcp.shutdown()
  const [fin] = c.out()
  t.equal(fin!.tcp!.flags & FIN, FIN)
  t.equal(c.tcp.stats().stateName, 'last-ack')
  c.now += 2n * S
  c.tcp.poll(c.now)
  const [again] = c.out()
  t.equal(again!.tcp!.flags & FIN, FIN, 'FIN retransmitted')
  c.feed({ seq: c.peerSeq + 1, ack: ISN + 2, flags: ACK })
  t.equal(c.tcp.stats().stateName, 'closed')
  t.end()
})

t.test('ARP requests for our address are answered; other frames are not ours', (t) => {
  const c = established(t)
  t.ok(c.tcp.input(buildArpFrame({ op: 'request', senderMac: PEER.mac, senderIp: PEER.ip, targetMac: '00:00:00:00:00:00', targetIp: US.ip }), c.now))
  const [reply] = c.out()
  t.equal(reply!.arp!.op, 'reply')
  t.equal(reply!.arp!.senderMac, US.mac)
  t.equal(reply!.arp!.senderIp, US.ip)
  t.equal(reply!.arp!.targetIp, PEER.ip)
  t.notOk(c.tcp.input(buildArpFrame({ op: 'request', senderMac: PEER.mac, senderIp: PEER.ip, targetMac: '00:00:00:00:00:00', targetIp: '10.9.0.77' }), c.now))
  t.notOk(c.tcp.input(segment({ seq: c.peerSeq, ack: ISN + 1, flags: ACK, srcPort: 1234 }), c.now), 'another 4-tuple')
  t.equal(c.out().length, 0)
  t.end()
})

t.test('truncated and garbage frames never crash the stack', (t) => {
  const c = established(t)
  const good = segment({ seq: c.peerSeq, ack: ISN + 1, flags: ACK | PSH, payload: Buffer.from('data') })
  for (let len = 0; len < good.length; len++) c.tcp.input(good.subarray(0, len), c.now)
  const junk = Buffer.from(good)
  for (let i = 0; i < 500; i++) {
    junk[(i * 7919) % junk.length] = (i * 31) & 0xff
    c.tcp.input(junk, c.now)
  }
  c.out()
  t.ok(['established', 'closed', 'close-wait'].includes(c.tcp.stats().stateName))
  t.end()
})

// Issue 9, finding 4: a second FIN at rcv_nxt in CLOSE-WAIT advanced rcv_nxt again, ACKing sequence space
// the peer never sent. The reproducer: ISN 0x1000, IRS 5000, ESTABLISHED; FIN at 5001, then FIN at 5002.
t.test('regression: a FIN is processed once; a second FIN in CLOSE-WAIT is ACKed with the same rcv_nxt', (t) => {
  const c = established(t, { isn: 0x1000 })
  const [ack] = c.feed({ seq: 5001, ack: 0x1001, flags: FIN | ACK })
  t.equal(ack!.tcp!.ack, 5002, 'the FIN takes one number')
  t.equal(c.tcp.stats().stateName, 'close-wait')
  const [again] = c.feed({ seq: 5002, ack: 0x1001, flags: FIN | ACK })
  t.equal(again?.tcp?.ack, 5002, 'the second FIN is ACKed with the current rcv_nxt, not 5003')
  const [data] = c.feed({ seq: 5002, ack: 0x1001, flags: ACK | PSH, payload: Buffer.from('after FIN') })
  t.equal(data?.tcp?.ack, 5002, 'data after the FIN is not taken')
  t.equal(c.tcp.read().length, 0)
  t.equal(c.tcp.stats().bytes_in, 0)
  // LAST-ACK, then the same in TIME-WAIT (we close first on a fresh connection) and CLOSING
  c.tcp.shutdown()
  t.equal(c.out()[0]!.tcp!.flags & FIN, FIN)
  t.equal(c.tcp.stats().stateName, 'last-ack')
  t.equal(c.feed({ seq: 5002, ack: 0x1001, flags: FIN | ACK })[0]?.tcp?.ack, 5002, 'LAST-ACK: same rcv_nxt')
  t.equal(c.tcp.stats().stateName, 'last-ack', 'and the ACK of nothing new leaves the state alone')

  const w = established(t, { isn: 0x1000 })
  w.tcp.shutdown()
  w.out()
  w.feed({ seq: 5001, ack: 0x1002, flags: FIN | ACK })
  t.equal(w.tcp.stats().stateName, 'time-wait')
  t.equal(w.feed({ seq: 5002, ack: 0x1002, flags: FIN | ACK })[0]?.tcp?.ack, 5002, 'TIME-WAIT: same rcv_nxt')
  t.equal(w.feed({ seq: 5001, ack: 0x1002, flags: FIN | ACK })[0]?.tcp?.ack, 5002, 'a retransmitted FIN is re-ACKed')

  const k = established(t, { isn: 0x1000 })
  k.tcp.shutdown()
  k.out()
  k.feed({ seq: 5001, ack: 0x1001, flags: FIN | ACK }) // their FIN before the ACK of ours
  t.equal(k.tcp.stats().stateName, 'closing')
  t.equal(k.feed({ seq: 5002, ack: 0x1001, flags: FIN | ACK })[0]?.tcp?.ack, 5002, 'CLOSING: same rcv_nxt')
  k.feed({ seq: 5002, ack: 0x1002, flags: ACK })
  t.equal(k.tcp.stats().stateName, 'time-wait')
  t.end()
})

t.test('a FIN resent after a timeout keeps its sequence number; its ACK completes the close (no second FIN)', (t) => {
  const c = established(t)
  t.equal(c.tcp.write(Buffer.alloc(2 * MSS, 0x61)), 2 * MSS)
  c.tcp.shutdown()
  const first = c.out()
  t.same(first.map((f) => f.tcp!.flags & FIN), [0, 0, FIN], 'two data segments and the FIN')
  const finSeq = first[2]!.tcp!.seq
  c.now += 2n * S
  c.tcp.poll(c.now) // timeout: cwnd one segment, snd_nxt back to snd_una
  t.equal(c.out().length, 1, 'one segment again')
  // the peer had everything: it ACKs the data and the FIN
  const after = c.feed({ seq: c.peerSeq, ack: finSeq + 1, flags: ACK })
  t.equal(after.filter((f) => f.tcp!.flags & FIN).length, 0, 'no FIN at a new sequence number')
  t.equal(c.tcp.stats().stateName, 'fin-wait-2')
  t.equal(c.tcp.stats().unacked, 0, 'snd_nxt caught up with snd_una')
  c.now += 2n * S
  c.tcp.poll(c.now)
  t.equal(c.out().length, 0, 'nothing left to retransmit')
  t.end()
})

t.test('an old ACK (below snd_una) never updates the send window; one older than any window is dropped', (t) => {
  const c = established(t, { ws: 0 })
  sendData(c, 2 * MSS)
  c.feed({ seq: c.peerSeq, ack: ISN + 1 + 2 * MSS, flags: ACK, window: 4000 })
  t.equal(c.tcp.stats().snd_wnd, 4000)
  // a reordered older ACK with a newer seq (the peer sent data meanwhile) and a zero window
  c.feed({ seq: c.peerSeq, ack: ISN + 1 + MSS, flags: ACK | PSH, window: 0, payload: Buffer.from('x') })
  t.equal(c.tcp.stats().snd_wnd, 4000, 'the old ACK did not close the window')
  t.equal(c.tcp.read().toString(), 'x', 'its data was still taken')
  const before = c.tcp.stats().out_of_window
  const [back] = c.feed({ seq: c.peerSeq + 1, ack: ISN - 200_000, flags: ACK, window: 0 })
  t.equal(back?.tcp?.ack, c.peerSeq + 1, 'an ACK older than any window: ACKed back')
  t.equal(c.tcp.stats().out_of_window, before + 1)
  t.equal(c.tcp.stats().snd_wnd, 4000)
  t.end()
})

t.test('a SYN or RST in CLOSE-WAIT: challenge ACK, rcv_nxt unchanged; an out-of-window RST is ignored', (t) => {
  const c = established(t, { isn: 0x1000 })
  c.feed({ seq: 5001, ack: 0x1001, flags: FIN | ACK })
  const [syn] = c.feed({ seq: 5002, flags: SYN })
  t.equal(syn?.tcp?.flags, ACK)
  t.equal(syn?.tcp?.ack, 5002)
  t.equal(c.feed({ seq: 5002 + 10_000_000, flags: RST }).length, 0)
  t.equal(c.feed({ seq: 5010, flags: RST })[0]?.tcp?.ack, 5002, 'in window, not exact: challenge ACK')
  t.equal(c.tcp.stats().stateName, 'close-wait')
  c.feed({ seq: 5002, flags: RST })
  t.equal(c.tcp.stats().closeReason, 'reset')
  t.end()
})
