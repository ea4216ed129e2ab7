// The userspace TCP (native/src/tcp_conn.c, tcp_input.c) under random segments from a peer that lies (sequence numbers
// around and far from rcv_nxt, ACKs for data never sent or long acknowledged, repeated FINs, SYNs, RSTs,
// zero windows), with random writes, reads, timeouts and a shutdown: after every step its sequence
// variables must stay consistent (struct kbx_tcp_seq), every frame it sends must be well formed and
// checksummed and never ACK beyond rcv_nxt, and the bytes it delivers must be exactly the peer's stream.
import t from 'tap'
import { TcpFlags, buildTcpFrame, parseFrame } from '@kbx/net'
import { UserTcp } from './tcp.js'

const US = { mac: '02:00:00:00:00:01', ip: '10.9.0.1', port: 40000 }
const PEER = { mac: '02:00:00:00:00:02', ip: '10.9.0.2', port: 9878 }
const { FIN, SYN, RST, PSH, ACK } = TcpFlags
const S = 1_000_000_000n

/** mulberry32: a small seeded PRNG, so a failure names its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const peerByte = (offset: number) => (offset * 31 + 7) & 0xff
const seqLeq = (a: number, b: number) => ((a - b) | 0) <= 0

function runSeed(seed: number): string | undefined {
  const rnd = prng(seed)
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1))
  const isn = int(0, 0xffffffff) >>> 0
  const irs = int(0, 0xffffffff) >>> 0
  const tcp = UserTcp.create({ local: US, remote: PEER, isn, mss: 1000, ecn: false, rtoMinUs: 200_000 })
  try {
    let now = S
    let written = 0
    let delivered = 0
    const send = (seq: number, ack: number, flags: number, window: number, payload?: Buffer) =>
      tcp.input(buildTcpFrame({ srcMac: PEER.mac, dstMac: US.mac, srcIp: PEER.ip, dstIp: US.ip, srcPort: PEER.port, dstPort: US.port, seq: seq >>> 0, ack: ack >>> 0, flags, window, ...(payload === undefined ? {} : { payload }) }), now)
    tcp.connect(now)
    tcp.frames()
    send(irs, isn + 1, SYN | ACK, 65535)
    for (let step = 0; step < 400; step++) {
      const s = tcp.seq()
      const r = rnd()
      if (r < 0.55) {
        // a peer segment: mostly at rcv_nxt, sometimes around or far from it
        const near = rnd() < 0.6
        const seq = near ? s.rcv_nxt : (s.rcv_nxt + int(-3000, 3000) + (rnd() < 0.1 ? 0x40000000 : 0)) >>> 0
        const len = rnd() < 0.4 ? 0 : int(1, 1200)
        const offset = (seq - irs - 1) >>> 0
        const payload = len === 0 ? undefined : Buffer.from(Array.from({ length: len }, (_, i) => peerByte(offset + i)))
        let flags = rnd() < 0.9 ? ACK : 0
        if (rnd() < 0.12) flags |= FIN
        if (rnd() < 0.03) flags |= SYN
        if (rnd() < 0.03) flags |= RST
        if (len > 0) flags |= PSH
        const ack = rnd() < 0.7 ? s.snd_nxt : (s.snd_una + int(-70000, (s.snd_max - s.snd_una + 200) >>> 0)) >>> 0
        send(seq, ack, flags, rnd() < 0.1 ? 0 : int(0, 65535), payload)
      } else if (r < 0.7) {
        const n = int(1, 3000)
        try {
          written += tcp.write(Buffer.alloc(n, 0x61))
        } catch {
          // not connected any more: nothing taken
        }
      } else if (r < 0.85) {
        const got = tcp.read()
        for (let i = 0; i < got.length; i++) if (got[i] !== peerByte(delivered + i)) return `seed ${seed} step ${step}: delivered byte ${delivered + i} is ${got[i]}, the peer sent ${peerByte(delivered + i)}`
        delivered += got.length
      } else if (r < 0.99) {
        now += BigInt(int(0, 1500)) * 1_000_000n
        tcp.poll(now)
      } else {
        tcp.shutdown()
      }
      const after = tcp.seq()
      const st = tcp.stats()
      for (const f of tcp.frames()) {
        const p = parseFrame(f)
        if (!p.ok || p.tcp === undefined) return `seed ${seed} step ${step}: a frame we sent does not parse`
        if (!p.tcp.checksumValid || !p.ipv4!.checksumValid) return `seed ${seed} step ${step}: a frame we sent has a bad checksum`
        if (p.tcp.flags & ACK && st.stateName !== 'closed' && !seqLeq(p.tcp.ack, after.rcv_nxt)) return `seed ${seed} step ${step}: ACK ${p.tcp.ack} beyond rcv_nxt ${after.rcv_nxt}`
      }
      if (!seqLeq(after.snd_una, after.snd_nxt) || !seqLeq(after.snd_nxt, after.snd_max)) return `seed ${seed} step ${step}: snd_una ${after.snd_una} snd_nxt ${after.snd_nxt} snd_max ${after.snd_max}`
      const sentSpace = (after.snd_max - after.iss) >>> 0
      if (sentSpace !== 1 + st.bytes_out + after.fin_sent) return `seed ${seed} step ${step}: sequence space ${sentSpace} sent, bytes_out ${st.bytes_out} (+SYN, FIN ${after.fin_sent})`
      if (sentSpace > 1 + written + after.fin_sent) return `seed ${seed} step ${step}: sequence space ${sentSpace} sent, only ${written} bytes written (+SYN, FIN ${after.fin_sent})`
      const ackedSpace = (after.rcv_nxt - after.irs) >>> 0
      if (ackedSpace !== 1 + st.bytes_in + after.fin_received) return `seed ${seed} step ${step}: rcv_nxt ${ackedSpace} past the IRS, but ${st.bytes_in} bytes taken and FIN ${after.fin_received}`
      if (delivered + st.readable !== st.bytes_in) return `seed ${seed} step ${step}: ${delivered} read + ${st.readable} readable != ${st.bytes_in} taken`
      if (st.stateName === 'closed') break
    }
    return undefined
  } finally {
    tcp.close()
  }
}

t.test('random hostile segments: sequence invariants, well-formed output, exact delivery (300 seeds)', (t) => {
  const failures: string[] = []
  for (let seed = 1; seed <= 300; seed++) {
    const failure = runSeed(seed)
    if (failure !== undefined) failures.push(failure)
  }
  t.same(failures.slice(0, 5), [], `${failures.length} seeds broke an invariant`)
  t.end()
})
