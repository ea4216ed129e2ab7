import { UsageError } from '@kbx/errors'

// Parsers work on char codes so the in-place writers (writeMacTo, parseIPv4) never allocate.

function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 97 && code <= 102) return code - 87
  if (code >= 65 && code <= 70) return code - 55
  return -1
}

function badMac(s: string): UsageError {
  return new UsageError(`invalid MAC address ${JSON.stringify(s)}`, {
    op: 'parse MAC address',
    hint: 'write a MAC address as six hex bytes, e.g. 02:00:00:00:00:01',
  })
}

/** Writes the MAC address `s` ("aa:bb:cc:dd:ee:ff" or with '-') into dst[offset..offset+6). */
export function writeMacTo(dst: Uint8Array, offset: number, s: string): void {
  if (typeof s !== 'string' || s.length !== 17) throw badMac(s)
  for (let i = 0; i < 6; i++) {
    const p = i * 3
    const hi = hexDigit(s.charCodeAt(p))
    const lo = hexDigit(s.charCodeAt(p + 1))
    if (hi < 0 || lo < 0) throw badMac(s)
    if (i < 5) {
      const sep = s.charCodeAt(p + 2)
      if (sep !== 58 /* : */ && sep !== 45 /* - */) throw badMac(s)
    }
    dst[offset + i] = (hi << 4) | lo
  }
}

/** 6-byte MAC address from "aa:bb:cc:dd:ee:ff" (or "aa-bb-…"); UsageError on bad input. */
export function parseMac(s: string): Buffer {
  const mac = Buffer.alloc(6)
  writeMacTo(mac, 0, s)
  return mac
}

const hex2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** "aa:bb:cc:dd:ee:ff" from 6 bytes at offset. */
export function formatMac(b: Uint8Array, offset = 0): string {
  if (offset < 0 || offset + 6 > b.length) {
    throw new RangeError(`formatMac: need 6 bytes at offset ${offset}, have ${b.length - offset}`)
  }
  return `${hex2[b[offset]!]}:${hex2[b[offset + 1]!]}:${hex2[b[offset + 2]!]}:${hex2[b[offset + 3]!]}:${hex2[b[offset + 4]!]}:${hex2[b[offset + 5]!]}`
}

function badIPv4(s: string): UsageError {
  return new UsageError(`invalid IPv4 address ${JSON.stringify(s)}`, {
    op: 'parse IPv4 address',
    hint: 'write an IPv4 address in dotted-quad form, e.g. 10.0.0.1',
  })
}

/** Dotted-quad IPv4 address as a u32 in host order (10.0.0.1 → 0x0a000001); UsageError on bad input. */
export function parseIPv4(s: string): number {
  if (typeof s !== 'string') throw badIPv4(s)
  let value = 0
  let octet = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) throw badIPv4(s)
      value = value * 256 + octet
      octet = 0
      digits = 0
      dots++
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) throw badIPv4(s) // leading zero: ambiguous (octal in some tools)
      octet = octet * 10 + (c - 48)
      digits++
      if (octet > 255) throw badIPv4(s)
    } else {
      throw badIPv4(s)
    }
  }
  if (dots !== 3 || digits === 0) throw badIPv4(s)
  return value * 256 + octet
}

/** Whether `s` is a dotted-quad IPv4 address. */
export function isIPv4(s: string): boolean {
  try {
    parseIPv4(s)
    return true
  } catch {
    return false
  }
}

/** Dotted quad from a u32 in host order. */
export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** Reads a big-endian IPv4 address at offset as a u32 in host order. */
export function readIPv4(b: Uint8Array, offset: number): number {
  return ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0
}

/** Writes a u32 (host order) IPv4 address big-endian at offset. */
export function writeIPv4(dst: Uint8Array, offset: number, n: number): void {
  dst[offset] = (n >>> 24) & 255
  dst[offset + 1] = (n >>> 16) & 255
  dst[offset + 2] = (n >>> 8) & 255
  dst[offset + 3] = n & 255
}

function badIPv6(s: string): UsageError {
  return new UsageError(`invalid IPv6 address ${JSON.stringify(s)}`, {
    op: 'parse IPv6 address',
    hint: 'write an IPv6 address like fd00::1 (a %zone suffix is not accepted)',
  })
}

/** 16-byte IPv6 address from its text form (with "::" and an optional trailing dotted quad). */
export function parseIPv6(s: string): Buffer {
  if (typeof s !== 'string' || s.length < 2 || s.length > 45) throw badIPv6(s)
  const out = Buffer.alloc(16)
  const halves = s.split('::')
  if (halves.length > 2) throw badIPv6(s)
  const groupsOf = (part: string, allowTrailingIPv4: boolean): number[] => {
    if (part === '') return []
    const pieces = part.split(':')
    const words: number[] = []
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!
      if (allowTrailingIPv4 && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece)
        words.push(v4 >>> 16, v4 & 0xffff)
        continue
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) throw badIPv6(s)
      words.push(parseInt(piece, 16))
    }
    return words
  }
  let head: number[]
  let tail: number[]
  try {
    head = groupsOf(halves[0]!, halves.length === 1)
    tail = halves.length === 2 ? groupsOf(halves[1]!, true) : []
  } catch {
    throw badIPv6(s)
  }
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) throw badIPv6(s)
  head.forEach((w, i) => out.writeUInt16BE(w, i * 2))
  tail.forEach((w, i) => out.writeUInt16BE(w, 16 - (tail.length - i) * 2))
  return out
}

/** RFC 5952 text form of the 16-byte IPv6 address at offset. */
export function formatIPv6(b: Uint8Array, offset = 0): string {
  const words: number[] = []
  for (let i = 0; i < 8; i++) words.push((b[offset + i * 2]! << 8) | b[offset + i * 2 + 1]!)
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hexWords = words.map((w) => w.toString(16))
  if (bestStart < 0) return hexWords.join(':')
  return `${hexWords.slice(0, bestStart).join(':')}::${hexWords.slice(bestStart + bestLength).join(':')}`
}
