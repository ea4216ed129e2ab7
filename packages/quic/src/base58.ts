// Base58 (Bitcoin alphabet), how Solana writes public keys: what a validator's logs and stake files show.
const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const VALUES = new Map([...ALPHABET].map((ch, i) => [ch, BigInt(i)]))

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

/** Decodes base58 text; undefined when a character is not in the alphabet. */
export function base58Decode(text: string): Buffer | undefined {
  let n = 0n
  for (const ch of text) {
    const v = VALUES.get(ch)
    if (v === undefined) return undefined
    n = n * 58n + v
  }
  const bytes: number[] = []
  for (; n > 0n; n >>= 8n) bytes.unshift(Number(n & 0xffn))
  const zeros = text.length - text.replace(/^1+/, '').length
  return Buffer.from([...new Array<number>(zeros).fill(0), ...bytes])
}
