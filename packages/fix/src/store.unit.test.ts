import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { FileSeqStore } from './store.js'

function tempPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-fix-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'sub', 'seq.json')
}

t.test('FileSeqStore: saves in place, a new instance resumes from the file', async (t) => {
  const path = tempPath(t)
  const a = new FileSeqStore(path)
  t.same([a.nextSenderSeq, a.nextTargetSeq, a.nextClOrdId], [1, 1, 1], 'a missing file starts from 1')
  a.nextSenderSeq = 123456789
  a.nextTargetSeq = 42
  a.nextClOrdId = 7
  a.save()
  a.nextSenderSeq = 5 // shorter than before: the record must not keep digits of the old one
  a.save()
  const text = readFileSync(path, 'utf8')
  t.equal(text.length, 128, 'one fixed-size record')
  t.same(JSON.parse(text), { nextSenderSeq: 5, nextTargetSeq: 42, nextClOrdId: 7 })
  a.close()
  const b = new FileSeqStore(path)
  t.same([b.nextSenderSeq, b.nextTargetSeq, b.nextClOrdId], [5, 42, 7], 'resumed')
  b.close()
})

t.test('FileSeqStore: a longer file from an older writer is cut after the record', async (t) => {
  const path = tempPath(t)
  const a = new FileSeqStore(path)
  a.save()
  a.close()
  writeFileSync(path, JSON.stringify({ nextSenderSeq: 9, nextTargetSeq: 8, nextClOrdId: 3 }) + ' '.repeat(300) + '\n')
  const b = new FileSeqStore(path)
  t.same([b.nextSenderSeq, b.nextTargetSeq, b.nextClOrdId], [9, 8, 3])
  b.nextTargetSeq = 10
  b.save()
  b.close()
  const text = readFileSync(path, 'utf8')
  t.equal(text.length, 128)
  t.same(JSON.parse(text), { nextSenderSeq: 9, nextTargetSeq: 10, nextClOrdId: 3 })
})
