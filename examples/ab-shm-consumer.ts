// A consumer of `ab-arbitrate --out shm:NAME` in TypeScript, through @kbx/ab's ShmReader (one native call per
// batch; the cursor is this process's own):
//   node --import tsx examples/ab-shm-consumer.ts NAME [--batch N] [--delay-ms MS] [--quiet]
// --delay-ms: sleep that long after each batch while the producer runs (a deliberately slow reader).
// Prints one JSON line per message ({"index":…,"stream":…,"sequence":…,"line":…,"arrivalNs":…,"consistent":…},
// consistent: the payload's own stream and number are the slot's), or with --quiet none, and at the end
// (the producer stopped and every message was read) {"event":"end","tool":"ab-shm-consumer","data":{…}}.
import { setTimeout as sleep } from 'node:timers/promises'
import { ShmReader, decodePayload } from '@kbx/ab'

const [name, ...rest] = process.argv.slice(2)
const option = (flag: string, fallback: number) => {
  const at = rest.indexOf(flag)
  return at >= 0 ? Number(rest[at + 1]) : fallback
}
if (!name || name.startsWith('-')) {
  process.stderr.write('usage: ab-shm-consumer.ts NAME [--batch N] [--delay-ms MS] [--quiet]\n')
  process.exit(2)
}
const batch = option('--batch', 256)
const delayMs = option('--delay-ms', 0)
const quiet = rest.includes('--quiet')

const reader = new ShmReader(name, { batch })
const format = reader.status().format
process.stdout.write(`${JSON.stringify({ event: 'start', tool: 'ab-shm-consumer', data: { name, head: String(reader.status().head) } })}\n`)
let received = 0
let inconsistent = 0
let lastIndex = -1n
let outOfOrder = 0
for (;;) {
  const messages = reader.read(batch)
  for (const m of messages) {
    const d = decodePayload(format, m.payload)
    const consistent = d.kind === 'data' && d.stream === m.stream && d.sequence === m.sequence
    if (!consistent) inconsistent++
    if (m.index <= lastIndex) outOfOrder++
    lastIndex = m.index
    received++
    if (!quiet)
      process.stdout.write(`${JSON.stringify({ index: String(m.index), stream: m.stream, sequence: String(m.sequence), line: m.line, arrivalNs: String(m.arrivalNs), consistent })}\n`)
  }
  const status = reader.status()
  if (messages.length === 0) {
    if (status.ended && status.next >= status.head) break
    await sleep(1)
  } else if (delayMs > 0 && !status.ended) {
    await sleep(delayMs)
  }
}
const status = reader.status()
reader.close()
process.stdout.write(`${JSON.stringify({ event: 'end', tool: 'ab-shm-consumer', data: { received, lost: String(status.lost), head: String(status.head), inconsistent, outOfOrder } })}\n`)
