import t from 'tap'
import { SystemError, XskError, errnoOf } from '@kbx/errors'
import { KBX_ERROR_MESSAGE_MAX, KBX_ERROR_OPERATION_MAX, KbxErrorRecord, libkbx, type KbxUmemPtr } from './libkbx.js'
import { nativeError, takeNativeFailure } from './native-error.js'
import { compareLayouts } from './testing/index.js'

/** A failing call of the AF_XDP core (no privileges needed: refused before the kernel is asked). */
function createUmem(frameSize: number): number {
  const out: [KbxUmemPtr | null] = [null]
  const rc = libkbx().kbx_umem_create({ frame_count: 64, frame_size: frameSize, headroom: 0, fill_size: 64, comp_size: 64 }, out)
  if (out[0]) libkbx().kbx_umem_destroy(out[0])
  return rc
}

t.test('struct kbx_error and its limits agree with kbx_error.h', async (t) => {
  const report = compareLayouts({
    headers: ['kbx_error.h'],
    structs: [{ c: 'kbx_error', type: KbxErrorRecord }],
    constants: [
      { c: 'KBX_ERROR_OPERATION_MAX', value: KBX_ERROR_OPERATION_MAX },
      { c: 'KBX_ERROR_MESSAGE_MAX', value: KBX_ERROR_MESSAGE_MAX },
    ],
  })
  t.same(report.mismatches, [])
  t.ok(report.checked >= 9, `${report.checked} comparisons`)
})

t.test('a failing AF_XDP core call: operation, errno and particulars through the one reader', async (t) => {
  const rc = createUmem(1000)
  t.equal(rc, -errnoOf('EINVAL'))
  const err = nativeError(rc, 'fallback', { type: XskError, hint: (errno) => `hint for ${errno}` })
  t.type(err, XskError)
  t.equal(err.op, 'create UMEM', 'the operation C recorded')
  t.equal(err.errno, errnoOf('EINVAL'))
  t.equal(err.code, 'EINVAL')
  t.equal(err.hint, `hint for ${errnoOf('EINVAL')}`)
  t.match(err.message, /^create UMEM failed: EINVAL \(frame size 1000 is not a power of two from 2048 to \d+\)$/)
})

t.test('the record is taken once, and only for the errno it was made for', async (t) => {
  const rc = createUmem(1000)
  t.match(takeNativeFailure(rc, 'fallback'), { op: 'create UMEM', errno: errnoOf('EINVAL'), message: /frame size 1000/ })
  t.same(takeNativeFailure(rc, 'read again'), { op: 'read again', errno: errnoOf('EINVAL'), message: '' }, 'forgotten once read')

  createUmem(1000)
  const other = nativeError(-errnoOf('EBUSY'), 'bind something')
  t.type(other, SystemError)
  t.equal(other.op, 'bind something', 'a record of another errno is not this failure')
  t.equal(other.message, 'bind something failed: EBUSY')
  t.ok(other.hint, 'the errno hint of @kbx/errors by default')
  t.same(takeNativeFailure(-errnoOf('EINVAL'), 'after'), { op: 'after', errno: errnoOf('EINVAL'), message: '' }, 'the mismatched record was consumed too')
})
