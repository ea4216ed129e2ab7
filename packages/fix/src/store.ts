import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { SystemError } from '@kbx/errors'

/** Sequence numbers of one session (and the next ClOrdID), persisted so a restart resumes. */
export interface SeqState {
  nextSenderSeq: number
  nextTargetSeq: number
  nextClOrdId: number
}

export interface SeqStore extends SeqState {
  /** Writes the state if it changed since the last save. */
  save(): void
  reset(): void
  /** Releases what save() holds open (a later save() opens it again). */
  close(): void
}

export class MemorySeqStore implements SeqStore {
  nextSenderSeq = 1
  nextTargetSeq = 1
  nextClOrdId = 1
  save(): void {}
  reset(): void {
    this.nextSenderSeq = 1
    this.nextTargetSeq = 1
  }
  close(): void {}
}

/** Bytes of the store's record: the JSON padded with spaces, then a newline. */
const RECORD_BYTES = 128

/**
 * A small JSON file, one fixed-size record overwritten in place by a single write at offset 0 through a
 * descriptor kept open: a process that dies mid-session leaves the old or the new record, never a mix,
 * and a save costs one pwrite (a write + rename costs a journal commit, ~0.5 ms on ext4, per message).
 * Like before, no fsync: a machine crash may lose the last saves.
 */
export class FileSeqStore implements SeqStore {
  nextSenderSeq = 1
  nextTargetSeq = 1
  nextClOrdId = 1
  private saved = ''
  private fd: number | null = null
  private readonly record = Buffer.alloc(RECORD_BYTES)

  constructor(readonly path: string) {
    let text: string | undefined
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError('read', path, err)
    }
    if (text !== undefined) {
      const state = JSON.parse(text) as Partial<SeqState>
      for (const key of ['nextSenderSeq', 'nextTargetSeq', 'nextClOrdId'] as const) {
        const v = state[key]
        if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1) this[key] = v
      }
      this.saved = this.serialize()
    }
  }

  private serialize(): string {
    return JSON.stringify({ nextSenderSeq: this.nextSenderSeq, nextTargetSeq: this.nextTargetSeq, nextClOrdId: this.nextClOrdId })
  }

  save(): void {
    const text = this.serialize()
    if (text === this.saved) return
    const record = this.record.fill(0x20)
    record.write(text, 0, 'latin1')
    record[RECORD_BYTES - 1] = 0x0a
    try {
      if (this.fd === null) {
        mkdirSync(dirname(this.path), { recursive: true })
        const fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o644)
        writeSync(fd, record, 0, RECORD_BYTES, 0)
        ftruncateSync(fd, RECORD_BYTES) // a longer file written by an older version: cut after the record
        this.fd = fd
      } else writeSync(this.fd, record, 0, RECORD_BYTES, 0)
    } catch (err) {
      throw storeError('write', this.path, err)
    }
    this.saved = text
  }

  close(): void {
    if (this.fd === null) return
    closeSync(this.fd)
    this.fd = null
  }

  reset(): void {
    this.nextSenderSeq = 1
    this.nextTargetSeq = 1
  }
}

function storeError(what: string, path: string, err: unknown): SystemError {
  const e = err as NodeJS.ErrnoException
  return new SystemError(`${what} FIX sequence store`, e.errno === undefined ? 0 : -e.errno, { detail: `${path}: ${e.message}`, hint: 'pass --store PATH to a writable location' })
}
