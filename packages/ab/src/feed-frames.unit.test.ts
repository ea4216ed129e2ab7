import t from 'tap'
import { udpFrameTemplate } from '@kbx/net'
import { FeedFrameConfig, type FeedFrameSpec } from './feed-frames.js'
import { encodeEndOfSession, encodeFeedPayload, type FeedFormat } from './format.js'
import { END_OF_SESSION, itemSequence } from './plan.js'

/**
 * The frames libkbx writes for ab-feed against the TypeScript encoders they replace: the same bytes for data
 * packets and end-of-session packets, across sessions, wrap-around and padding.
 */
const template = udpFrameTemplate({
  srcMac: '02:00:00:00:00:01',
  dstMac: '02:00:00:00:00:02',
  srcIp: '10.0.0.1',
  dstIp: '10.0.0.2',
  srcPort: 40000,
  dstPort: 30001,
})

function expected(spec: FeedFrameSpec, item: number, endOfSession: boolean): Buffer {
  const o = { format: spec.format, startSeq: spec.startSeq, streams: spec.streams, count: 0, restartEvery: spec.restartEvery, restartSeq: spec.restartSeq }
  const n = itemSequence(o, item)
  const payload = endOfSession
    ? encodeEndOfSession(n.stream, n.session, n.sequence + 1n)
    : encodeFeedPayload(spec.format, n.stream, n.sequence, spec.size, n.session)
  const out = Buffer.alloc(template.frameLength(payload.length))
  template.write(out, 0, payload)
  return out
}

const cases: { name: string; format: FeedFormat; size: number; streams: number; startSeq: bigint; restartSeq: bigint; restartEvery: number }[] = [
  { name: 'optiq, one stream', format: 'optiq', size: 0, streams: 1, startSeq: 1n, restartSeq: 1n, restartEvery: 0 },
  { name: 'optiq, 5 streams, padded, wrapping at 2^32', format: 'optiq', size: 100, streams: 5, startSeq: 2n ** 32n - 7n, restartSeq: 1n, restartEvery: 0 },
  { name: 'optiq, restarts', format: 'optiq', size: 0, streams: 3, startSeq: 500n, restartSeq: 9n, restartEvery: 4 },
  { name: 'moldudp64, 4 streams', format: 'moldudp64', size: 0, streams: 4, startSeq: 1n, restartSeq: 1n, restartEvery: 0 },
  { name: 'moldudp64, sessions, wrapping at 2^64, padded', format: 'moldudp64', size: 200, streams: 2, startSeq: 2n ** 64n - 3n, restartSeq: 1n, restartEvery: 5 },
  { name: 'moldudp64, many sessions (base-36 names)', format: 'moldudp64', size: 0, streams: 11, startSeq: 7n, restartSeq: 100n, restartEvery: 1 },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const spec: FeedFrameSpec = { ...c, template }
    const config = new FeedFrameConfig(spec)
    let mismatches = 0
    for (const first of [0, 37, 2 ** 33 + 3]) {
      for (let entry = 0; entry < 60; entry++) {
        const item = first + entry
        if (!config.frame(first, entry).equals(expected(spec, item, false))) mismatches++
        if (c.format === 'moldudp64' && !config.frame(first, entry | END_OF_SESSION).equals(expected(spec, item, true))) mismatches++
      }
    }
    t.equal(mismatches, 0, 'every frame equals the TypeScript encoding')
  })
}

t.test('a config the frames cannot be built from is refused', async (t) => {
  t.throws(() => new FeedFrameConfig({ format: 'optiq', size: 0, streams: 0, startSeq: 1n, restartSeq: 1n, restartEvery: 0, template }).frame(0, 0), /EINVAL|Invalid/)
  t.throws(() => new FeedFrameConfig({ format: 'optiq', size: 4000, streams: 1, startSeq: 1n, restartSeq: 1n, restartEvery: 0, template }).frame(0, 0), /ENOSPC|space/i)
})
