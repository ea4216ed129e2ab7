import t from 'tap'
import { base58 } from './base58.js'

t.test('base58: known encodings, leading zero bytes as 1s', async (t) => {
  t.equal(base58(Buffer.from('Hello World!')), '2NEpo7TZRRrLZSi2U')
  t.equal(base58(Buffer.alloc(32)), '1'.repeat(32), "the all-zero key (Solana's system program id)")
  t.equal(base58(Buffer.from([0, 0, 1])), '112')
  t.equal(base58(Buffer.from([58])), '21')
  t.equal(base58(Buffer.alloc(0)), '')
})
