import { writeSync } from 'node:fs'

const sleepCell = new Int32Array(new SharedArrayBuffer(4))

/**
 * Writes all of `data` to `fd` synchronously. Retries partial writes and EAGAIN (a non-blocking
 * pipe that is full) so a line is never cut or lost. Returns false when the reader is gone (EPIPE).
 */
export function writeAllSync(fd: number, data: string | Uint8Array): boolean {
  let buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  let waitMs = 1
  while (buf.length > 0) {
    try {
      const written = writeSync(fd, buf)
      buf = buf.subarray(written)
      waitMs = 1
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EAGAIN') {
        Atomics.wait(sleepCell, 0, 0, waitMs)
        waitMs = Math.min(waitMs * 2, 50)
        continue
      }
      if (code === 'EPIPE' || code === 'EBADF') return false
      throw err
    }
  }
  return true
}
