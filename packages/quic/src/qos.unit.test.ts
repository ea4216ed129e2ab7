import t from 'tap'
import { UsageError } from '@kbx/errors'
import { thrown } from '@kbx/errors/testing'
import { base58 as base58Encode, base58Decode } from './base58.js'
import { RateLimiter, StreamWindow, isStaked, maxUniStreams, parseStakes, streamCapacity } from './qos.js'

/** Agave's QoS rules as the sink's C applies them (kbx_quic.h "Agave's QoS"), and the stakes file. */
const SOL = 1_000_000_000n
const MS = 1_000_000n

t.test('max uni streams from stake: 128 unstaked, 128 + share of 100000 staked, clamped to 128..512', async (t) => {
  t.equal(maxUniStreams(0n, 1000n * SOL), 128, 'unstaked')
  t.equal(maxUniStreams(1n, 0n), 128, 'no total stake: the staked minimum')
  t.equal(maxUniStreams(2n, 1n), 128, 'stake over the total: the staked minimum')
  t.equal(maxUniStreams(1n, 100_000n), 128, 'a tiny share rounds down to the minimum')
  // 0.1 % of 99872 = 99.872 -> 99 + 128
  t.equal(maxUniStreams(1n * SOL, 1000n * SOL), 227)
  // 0.3 % -> 299.616 -> 299 + 128
  t.equal(maxUniStreams(3n * SOL, 1000n * SOL), 427)
  t.equal(maxUniStreams(1n * SOL, 100n * SOL), 512, '1 % is over the cap: 512')
  t.equal(maxUniStreams(1n, 1n), 512, 'all the stake: 512')
})

t.test('a stake below one stream per 100 ms window of the capacity counts as unstaked', async (t) => {
  // max_streams_per_ms 500: the smallest staked share is 1 / 50000
  t.equal(isStaked(1n, 50_000n, 500), true)
  t.equal(isStaked(1n, 50_001n, 500), false)
  t.equal(isStaked(0n, 10n, 500), false)
  t.equal(isStaked(1n, 50_001n, 1000), true, 'a larger capacity lowers the bar')
  t.equal(isStaked(1n, 10_001n, 100), false, 'a smaller one raises it')
})

t.test('stream capacity per 100 ms window: unstaked 20 (200/s); staked 80 % of capacity, by share when loaded', async (t) => {
  t.equal(streamCapacity(0n, 100n, 500, false), 20)
  t.equal(streamCapacity(0n, 100n, 500, true), 20, 'load does not change the unstaked rate')
  t.equal(streamCapacity(10n, 100n, 500, false), 40_000, 'unloaded: the whole staked capacity')
  t.equal(streamCapacity(10n, 100n, 500, true), 4_000, 'loaded: 10 % of 40000')
  t.equal(streamCapacity(1n, 1_000_000n, 500, true), 21, 'loaded, tiny share: one more than unstaked')
  t.equal(streamCapacity(10n, 100n, 10, true), 80, 'capacity 10/ms: 800 staked per window, 10 % of it')
})

t.test('the per-IP rate limiter: a burst of 8, then one per 7.5 s (8 per minute)', async (t) => {
  const interval = 60_000n * MS / 8n
  const r = new RateLimiter(8, interval)
  const t0 = 1_000n * MS
  for (let i = 0; i < 8; i++) t.equal(r.allow(t0), true, `connection ${i + 1} of the burst`)
  t.equal(r.allow(t0), false, 'the ninth at once is refused')
  t.equal(r.allow(t0 + interval - MS), false, 'still refused just before one interval')
  t.equal(r.allow(t0 + interval), true, 'one more after 7.5 s')
  t.equal(r.allow(t0 + interval), false, 'and only one')
  const later = t0 + 120_000n * MS
  for (let i = 0; i < 8; i++) t.equal(r.allow(later), true, `idle two minutes: the full burst again (${i + 1})`)
  t.equal(r.allow(later), false)
  t.equal(new RateLimiter(0, interval).allow(t0), false, 'a burst of 0 allows nothing')
})

t.test('the stream window: capacity per 100 ms, a fresh window after it', async (t) => {
  const w = new StreamWindow()
  const t0 = 5_000n * MS
  for (let i = 0; i < 20; i++) t.equal(w.admit(20, t0 + BigInt(i) * MS), true)
  t.equal(w.admit(20, t0 + 50n * MS), false, 'the 21st stream in the window waits')
  t.equal(w.admit(20, t0 + 100n * MS), false, 'still the same window at exactly 100 ms')
  t.equal(w.admit(20, t0 + 101n * MS), true, 'a new window')
  let admitted = 0
  for (let ms = 0n; ms < 1000n; ms++) if (w.admit(20, t0 + 200n * MS + ms * MS)) admitted++
  t.ok(admitted >= 180 && admitted <= 220, `about 200 streams a second (${admitted})`)
})

t.test('base58 round-trips Solana keys, leading zero bytes included', async (t) => {
  const key = Buffer.alloc(32, 7)
  t.same(base58Decode(base58Encode(key)), key)
  const zeros = Buffer.concat([Buffer.alloc(2), Buffer.alloc(30, 255)])
  t.match(base58Encode(zeros), /^11[^1]/)
  t.same(base58Decode(base58Encode(zeros)), zeros)
  t.equal(base58Decode('11111111111111111111111111111111')?.length, 32, 'the system program id is 32 zero bytes')
  t.equal(base58Decode('0OIl'), undefined, 'characters outside the alphabet')
})

t.test('stakes file: keys and lamports, comments and blank lines; errors name the line', async (t) => {
  const a = base58Encode(Buffer.alloc(32, 1))
  const b = base58Encode(Buffer.alloc(32, 2))
  const stakes = parseStakes(`# validator stakes\n${a} 1000\n\n${b}   2500  # comment\n`, 'f')
  t.equal(stakes.count, 2)
  t.equal(stakes.total, 3500n)
  t.same([...stakes.lamports], [1000n, 2500n])
  t.same(stakes.keys.subarray(32, 64), Buffer.alloc(32, 2))
  const fails = (text: string, pattern: RegExp, what: string) => {
    const e = thrown(() => parseStakes(text, 'f'))
    t.type(e, UsageError, what)
    t.match((e as Error | undefined)?.message, pattern, what)
  }
  fails(`${a} 1\nnot-a-key 5\n`, /f line 2: "not-a-key" is not a base58 Ed25519 public key/, 'bad key')
  fails(`${a}\n`, /f line 1: expected "<base58 pubkey> <lamports>"/, 'missing lamports')
  fails(`${a} -5\n`, /f line 1: lamports "-5"/, 'negative lamports')
  fails(`${a} 18446744073709551616\n`, /line 1: lamports/, 'lamports over 64 bits')
  fails(`${a} 1\n${a} 2\n`, /f line 2: .* already has a stake on line 1/, 'repeated key')
  fails(`${a} 18446744073709551615\n${b} 1\n`, /f line 2: the total stake exceeds/, 'total over 64 bits')
  fails(`${base58Encode(Buffer.alloc(31, 9))} 1\n`, /32 bytes/, 'a 31-byte key')
})
