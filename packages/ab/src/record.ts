// ab-feed --record-a/--record-b: every frame a line submits, written to a classic pcap (ns timestamps) as it
// goes out — the feeder's own capture of a run, which ab-feed --replay sends again. The frames are read
// from the UMEM after each send call, straight into the writer's buffer: nothing allocated per frame.
import { stringOption } from '@kbx/cli'
import type { ToolContext } from '@kbx/cli'
import { PcapWriter } from '@kbx/net'
import type { TxBatch, XskSocket } from '@kbx/xsk'

/** --record-a/--record-b, for ab-feed's option table. */
export const recordOptions = {
  recordA: stringOption('--record-a <file>', 'write every frame line A sends to this pcap (ns timestamps), for --replay'),
  recordB: stringOption('--record-b <file>', 'the same for line B'),
}

/** One line's recording: the frames of each send call, timestamped by the call. */
export class FrameRecorder {
  private readonly writer: PcapWriter
  private addrs = new Float64Array(64)
  private lengths = new Uint32Array(64)

  constructor(path: string) {
    this.writer = PcapWriter.open(path, { nanosecond: true })
  }

  get frames(): number {
    return this.writer.packetCount
  }

  /** Sends the batch and records the frames the call submitted; returns how many. */
  send(socket: XskSocket, batch: TxBatch): number {
    const n = batch.count
    if (this.addrs.length < n) {
      this.addrs = new Float64Array(n)
      this.lengths = new Uint32Array(n)
    }
    for (let i = 0; i < n; i++) {
      this.addrs[i] = batch.addr(i)
      this.lengths[i] = batch.length(i)
    }
    const sent = socket.send(batch)
    // Submitted frames stay untouched in the UMEM until a later allocation reuses them.
    const ms = performance.timeOrigin + performance.now()
    const seconds = Math.floor(ms / 1000)
    const nanoseconds = Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6))
    const area = batch.umem.buffer
    for (let i = 0; i < sent; i++) this.writer.writeSlice(area, this.addrs[i]!, this.addrs[i]! + this.lengths[i]!, seconds, nanoseconds)
    return sent
  }

  close(): void {
    this.writer.close()
  }
}

/** Sends a line's batch, through its recorder when it has one. */
export function sendLine(line: { socket: XskSocket; batch: TxBatch; recorder?: FrameRecorder | undefined }): number {
  return line.recorder ? line.recorder.send(line.socket, line.batch) : line.socket.send(line.batch)
}

/** The line's --record-a/--record-b file, closed (flushed) at exit. */
export function openRecorder(ctx: ToolContext<object>, path: string | undefined): FrameRecorder | undefined {
  if (path === undefined) return undefined
  const recorder = new FrameRecorder(path)
  ctx.onCleanup(() => recorder.close())
  return recorder
}
