// The receive loop's tracking without sockets (native/src/ab_track.c through kbx_ab_rx_ingest): frames in,
// gaps, restarts and counters out, exactly as ab-arbitrate computes them from delivered frames. For tests
// and fuzzers; one FFI call per frame is fine there, never on the data path.
import { XskError } from '@kbx/errors'
import { KBX_AB_EVENT_SIZE, KBX_AB_RX_COUNTERS_SIZE, KBX_AB_RX_COUNTER_FIELDS, kbxAddress, koffi, libkbx, libkbxAb } from '@kbx/ffi'
import type { KbxAbRxPtr } from '@kbx/ffi'
import { readEvents, type Gap, type ReceiveCounters, type StreamEvent } from './arbitrator.js'
import { FORMAT_CODE, type FeedFormat } from './format.js'
import { DEFAULT_WINDOW, abLimits } from './program.js'

export interface ReceiveTrackerOptions {
  format: FeedFormat
  window?: number
  maxStreams?: number
  resetDistance?: bigint
}

const CAPACITY = 256

export class ReceiveTracker {
  readonly #rx: number
  readonly #events = Buffer.from(new ArrayBuffer(CAPACITY * KBX_AB_EVENT_SIZE))
  readonly #eventsAddress = kbxAddress(this.#events)
  readonly #counters = Buffer.from(new ArrayBuffer(KBX_AB_RX_COUNTERS_SIZE))
  #closed = false

  constructor(options: ReceiveTrackerOptions) {
    const out: [KbxAbRxPtr | null] = [null]
    const rc = libkbxAb().kbx_ab_rx_create(
      {
        format: FORMAT_CODE[options.format],
        window: options.window ?? DEFAULT_WINDOW,
        max_streams: options.maxStreams ?? abLimits().default_streams,
        batch_size: 64,
        reset_distance: options.resetDistance ?? abLimits().default_reset_distance,
      },
      out,
    )
    if (rc < 0 || !out[0]) throw new XskError(libkbx().kbx_last_operation() || 'create A/B receive loop', -rc)
    this.#rx = Number(koffi.address(out[0]))
  }

  /** One delivered frame (Ethernet, IPv4, UDP, feed payload) from a line; true when it was feed data. */
  ingest(frame: Uint8Array, line: 'A' | 'B' = 'A'): boolean {
    return libkbxAb().kbx_ab_rx_ingest(this.#rx, frame, frame.length, line === 'B' ? 1 : 0) === 1
  }

  /** Gaps and stream events recorded since the last call. */
  take(): { gaps: Gap[]; events: StreamEvent[] } {
    return this.#drain((events, capacity) => libkbxAb().kbx_ab_rx_take_events(this.#rx, events, capacity))
  }

  /** At the end: every hole below each stream's newest known number, as gaps. */
  flush(): { gaps: Gap[]; events: StreamEvent[] } {
    return this.#drain((events, capacity) => libkbxAb().kbx_ab_rx_flush(this.#rx, events, capacity))
  }

  counters(): ReceiveCounters {
    libkbxAb().kbx_ab_rx_counters(this.#rx, kbxAddress(this.#counters))
    const out = {} as ReceiveCounters
    KBX_AB_RX_COUNTER_FIELDS.forEach((name, i) => (out[name] = this.#counters.readBigUInt64LE(i * 8)))
    return out
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    libkbxAb().kbx_ab_rx_destroy(this.#rx)
  }

  #drain(call: (events: number, capacity: number) => number): { gaps: Gap[]; events: StreamEvent[] } {
    const all: { gaps: Gap[]; events: StreamEvent[] } = { gaps: [], events: [] }
    for (;;) {
      const n = call(this.#eventsAddress, CAPACITY)
      if (n < 0) throw new XskError(libkbx().kbx_last_operation() || 'A/B events', -n)
      const read = readEvents(this.#events, n)
      all.gaps.push(...read.gaps)
      all.events.push(...read.events)
      if (n < CAPACITY) return all
    }
  }
}
