import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
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
}

/** A small JSON file replaced atomically (write + rename) on save. */
export class FileSeqStore implements SeqStore {
  nextSenderSeq = 1
  nextTargetSeq = 1
  nextClOrdId = 1
  private saved = ''

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
    try {
      mkdirSync(dirname(this.path), { recursive: true })
      const tmp = `${this.path}.tmp`
      writeFileSync(tmp, text + '\n')
      renameSync(tmp, this.path)
    } catch (err) {
      throw storeError('write', this.path, err)
    }
    this.saved = text
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
