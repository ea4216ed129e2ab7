// Base58 (Bitcoin alphabet), how Solana writes public keys: what a validator's logs and stake files show.
const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** The base58 text of bytes (each leading zero byte is a leading '1'). */
export function base58(bytes: Uint8Array): string {
  let zeros = 0
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++
  let value = 0n
  for (const b of bytes) value = value * 256n + BigInt(b)
  let text = ''
  while (value > 0n) {
    text = ALPHABET[Number(value % 58n)]! + text
    value /= 58n
  }
  return '1'.repeat(zeros) + text
}
