/**
 * Ones'-complement sum (RFC 1071) of buf[start..end) folded to 16 bits, added to `initial`
 * (itself a partial sum). An odd trailing byte counts as the high byte of a zero-padded word.
 */
export function checksumPartial(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial
  let i = start
  const evenEnd = start + ((end - start) & ~1)
  // Sums stay far below 2^53 for any frame size, so folding once at the end is exact.
  for (; i < evenEnd; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!
  if (i < end) sum += buf[i]! << 8
  return foldChecksum(sum)
}

/** Folds a (possibly large) ones'-complement sum into 16 bits. */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  return sum
}

/**
 * RFC 1071 Internet checksum of buf[start..end): the ones' complement of the ones'-complement sum,
 * with `initial` (a partial sum, e.g. a pseudo-header's) added first. Over data that already holds a
 * correct checksum field the result is 0.
 */
export function internetChecksum(buf: Uint8Array, start: number, end: number, initial = 0): number {
  return ~checksumPartial(buf, start, end, initial) & 0xffff
}

/** Partial sum of the IPv4 pseudo-header (addresses as host-order u32s, length of the L4 segment). */
export function ipv4PseudoHeaderSum(srcIp: number, dstIp: number, protocol: number, l4Length: number): number {
  return foldChecksum((srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + protocol + l4Length)
}

/** Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1) for 16-byte addresses at the given offsets. */
export function ipv6PseudoHeaderSum(
  buf: Uint8Array,
  srcOffset: number,
  dstOffset: number,
  nextHeader: number,
  l4Length: number,
): number {
  let sum = checksumPartial(buf, srcOffset, srcOffset + 16)
  sum = checksumPartial(buf, dstOffset, dstOffset + 16, sum)
  return foldChecksum(sum + Math.floor(l4Length / 0x10000) + (l4Length & 0xffff) + nextHeader)
}
