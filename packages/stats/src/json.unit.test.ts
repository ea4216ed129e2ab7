import t from 'tap'
import { NetError, SystemError } from '@kbx/errors'
import { stringifyJson } from './json.js'

t.test('bigints are written as exact bare integers', async (t) => {
  const max64 = 2n ** 64n - 1n
  const line = stringifyJson({ packets: max64, negative: -(2n ** 63n), small: 5n })
  t.equal(line, '{"packets":18446744073709551615,"negative":-9223372036854775808,"small":5}')
  t.notMatch(line, /"18446744073709551615"/)
})

t.test('numbers stay numbers, non-finite become null', async (t) => {
  t.equal(stringifyJson({ a: 1.5, b: -0.25, c: NaN, d: Infinity, e: 1e21 }), '{"a":1.5,"b":-0.25,"c":null,"d":null,"e":1e+21}')
})

t.test('matches JSON.stringify for plain data', async (t) => {
  const value = { s: 'quote " and \\ and \n', arr: [1, 'x', null, true, { nested: [false] }], empty: {}, list: [] }
  t.equal(stringifyJson(value), JSON.stringify(value))
})

t.test('undefined and functions are dropped from objects, null in arrays', async (t) => {
  t.equal(stringifyJson({ a: undefined, b: () => 1, c: 1 }), '{"c":1}')
  t.equal(stringifyJson([undefined, () => 1]), '[null,null]')
})

t.test('toJSON is honoured (KbxError), plain errors get type and message', async (t) => {
  const err = new SystemError('bind AF_XDP socket', 16)
  const parsed = JSON.parse(stringifyJson({ err }))
  t.same(parsed.err, err.toJSON())
  t.equal(parsed.err.code, 'EBUSY')
  const plain = JSON.parse(stringifyJson(new TypeError('bad')))
  t.same(plain, { type: 'TypeError', message: 'bad' })
  const net = JSON.parse(stringifyJson(new NetError('unknown interface', { op: 'resolve' })))
  t.equal(net.type, 'NetError')
})

t.test('typed arrays, maps and sets become arrays and objects; bigint arrays stay exact', async (t) => {
  t.equal(stringifyJson(new BigUint64Array([2n ** 63n, 1n])), '[9223372036854775808,1]')
  t.equal(stringifyJson(new Uint16Array([1, 2])), '[1,2]')
  t.equal(stringifyJson(new Map<string, bigint>([['q0', 7n]])), '{"q0":7}')
  t.equal(stringifyJson(new Set([1, 2])), '[1,2]')
})

t.test('cycles do not recurse forever', async (t) => {
  const a: Record<string, unknown> = { name: 'a' }
  a.self = a
  t.equal(stringifyJson(a), '{"name":"a","self":"[Circular]"}')
  const shared = { x: 1 }
  t.equal(stringifyJson([shared, shared]), '[{"x":1},{"x":1}]', 'a repeated non-cyclic reference is not a cycle')
})
