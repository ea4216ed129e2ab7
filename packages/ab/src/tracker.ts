// The receive loop's tracking without sockets (native/src/ab_track.c through kbx_ab_rx_ingest): frames in,
// gaps, restarts and counters out, exactly as ab-arbitrate computes them from delivered frames. For tests
// and fuzzers; one FFI call per frame is fine there, never on the data path.
import { kbxAddress } from '@kbx/ffi'
import { readEvents, type Gap, type ReceiveCounters, type StreamEvent } from './arbitrator.js'
import { FORMAT_CODE, type FeedFormat } from './format.js'
import { KBX_AB_EVENT_SIZE, KBX_AB_RX_COUNTERS_SIZE, abError, abLimits, createReceiveLoop, libkbxAb, readReceiveCounters } from './native.js'

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
    const limits = abLimits()
    this.#rx = createReceiveLoop({
      format: FORMAT_CODE[options.format],
      window: options.window ?? limits.default_window,
      max_streams: options.maxStreams ?? limits.default_streams,
      batch_size: limits.default_batch,
      reset_distance: options.resetDistance ?? limits.default_reset_distance,
    })
  }

  /** One delivered frame (Ethernet, IPv4, UDP, feed payload) from a line; true when it was feed data. */
  /** Delivered messages also go to these outputs (the caller closes them after this tracker). */
  attachOutputs(outputs: { address: number }): void {
    libkbxAb().kbx_ab_rx_set_output(this.#rx, outputs.address)
  }

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
    return readReceiveCounters(this.#counters)
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
      if (n < 0) throw abError(n, 'A/B events')
      const read = readEvents(this.#events, n)
      all.gaps.push(...read.gaps)
      all.events.push(...read.events)
      if (n < CAPACITY) return all
    }
  }
}
