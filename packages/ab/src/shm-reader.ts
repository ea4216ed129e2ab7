// A reader of ab-arbitrate's shm ring (`--out shm:NAME`, native/include/kbx_ab_shm.h): its own cursor, one
// native call per batch (kbx_ab_shm_reader_read copies whole, consistent messages out of the mapped ring).
import { kbxAddress, koffi } from '@kbx/ffi'
import { streamKeyName } from './arbitrator.js'
import { FORMAT_CODE, type FeedFormat } from './format.js'
import { AB_STREAM_KEY_SIZE, KBX_AB_SHM, KBX_AB_SHM_READER_STATUS_SIZE, KBX_AB_SHM_SLOT_SIZE, KbxAbShmReaderStatus, KbxAbShmSlot, abError, libkbxAb } from './native.js'

/** A message of the ring. */
export interface ShmMessage {
  /** Its number in the ring (0 = the first message the ring took). */
  index: bigint
  stream: string
  sequence: bigint
  line: 'A' | 'B'
  /** CLOCK_REALTIME of the batch that delivered it. */
  arrivalNs: bigint
  /** The UDP payload (a view into the reader's buffer, valid until the next read; copy it to keep it). */
  payload: Buffer
}

export interface ShmStatus {
  /** Messages the producer has written. */
  head: bigint
  /** This reader's next message number. */
  next: bigint
  /** Messages this reader was overrun by (lost) since it opened. */
  lost: bigint
  /** The producer stopped. */
  ended: boolean
  slotSize: number
  slotCount: number
  format: FeedFormat
}

const SLOT = {
  stamp: koffi.offsetof(KbxAbShmSlot, 'stamp'),
  sequence: koffi.offsetof(KbxAbShmSlot, 'sequence'),
  arrivalNs: koffi.offsetof(KbxAbShmSlot, 'arrival_ns'),
  key: koffi.offsetof(KbxAbShmSlot, 'key'),
  line: koffi.offsetof(KbxAbShmSlot, 'line'),
  len: koffi.offsetof(KbxAbShmSlot, 'len'),
}
const STATUS = Object.fromEntries(['head', 'next', 'lost', 'state', 'slot_size', 'slot_count', 'format'].map((f) => [f, koffi.offsetof(KbxAbShmReaderStatus, f)])) as Record<string, number>

export class ShmReader {
  readonly #reader: number
  readonly #status = Buffer.from(new ArrayBuffer(KBX_AB_SHM_READER_STATUS_SIZE))
  readonly #statusAddress = kbxAddress(this.#status)
  readonly #buffer: Buffer
  readonly #bufferAddress: number
  #closed = false

  /** Opens /dev/shm/<name> read-only; the cursor starts at the ring's head (what is written from now on). */
  constructor(name: string, options: { batch?: number } = {}) {
    const out: [unknown] = [null]
    const rc = libkbxAb().kbx_ab_shm_reader_open(name, out)
    if (rc < 0 || !out[0]) throw abError(rc, `open shm ring ${name}`)
    this.#reader = Number(koffi.address(out[0]))
    const slotSize = this.status().slotSize
    this.#buffer = Buffer.from(new ArrayBuffer((options.batch ?? 256) * (slotSize + 8)))
    this.#bufferAddress = kbxAddress(this.#buffer)
  }

  /** The messages available now, up to max (one native call); overruns on the way add to status().lost. */
  read(max = 256): ShmMessage[] {
    const n = libkbxAb().kbx_ab_shm_reader_read(this.#reader, this.#bufferAddress, this.#buffer.length, max)
    const messages: ShmMessage[] = []
    const b = this.#buffer
    for (let i = 0, at = 0; i < n; i++) {
      const len = b.readUInt32LE(at + SLOT.len)
      messages.push({
        index: (b.readBigUInt64LE(at + SLOT.stamp) - 2n) / 2n,
        stream: streamKeyName(b.subarray(at + SLOT.key, at + SLOT.key + AB_STREAM_KEY_SIZE)),
        sequence: b.readBigUInt64LE(at + SLOT.sequence),
        line: b.readUInt32LE(at + SLOT.line) ? 'B' : 'A',
        arrivalNs: b.readBigUInt64LE(at + SLOT.arrivalNs),
        payload: b.subarray(at + KBX_AB_SHM_SLOT_SIZE, at + KBX_AB_SHM_SLOT_SIZE + len),
      })
      at += KBX_AB_SHM_SLOT_SIZE + ((len + 7) & ~7)
    }
    return messages
  }

  status(): ShmStatus {
    libkbxAb().kbx_ab_shm_reader_status(this.#reader, this.#statusAddress)
    const s = this.#status
    const format = s.readUInt32LE(STATUS['format']!)
    return {
      head: s.readBigUInt64LE(STATUS['head']!),
      next: s.readBigUInt64LE(STATUS['next']!),
      lost: s.readBigUInt64LE(STATUS['lost']!),
      ended: s.readUInt32LE(STATUS['state']!) === KBX_AB_SHM.ended,
      slotSize: s.readUInt32LE(STATUS['slot_size']!),
      slotCount: s.readUInt32LE(STATUS['slot_count']!),
      format: format === FORMAT_CODE.moldudp64 ? 'moldudp64' : 'optiq',
    }
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    libkbxAb().kbx_ab_shm_reader_close(this.#reader)
  }
}
