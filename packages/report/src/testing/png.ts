// Just enough of a PNG reader to look at what rsvg-convert drew: 8-bit gray, gray+alpha, RGB or RGBA, not interlaced.
import { inflateSync } from 'node:zlib'

export interface DecodedPng {
  width: number
  height: number
  channels: number
  /** Row after row, `channels` bytes a pixel. */
  pixels: Buffer
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 }

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c
  const pa = Math.abs(p - a)
  const pb = Math.abs(p - b)
  const pc = Math.abs(p - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

export function decodePng(png: Buffer): DecodedPng {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG')
  let width = 0
  let height = 0
  let channels = 0
  const data: Buffer[] = []
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at)
    const type = png.toString('latin1', at + 4, at + 8)
    const body = png.subarray(at + 8, at + 8 + length)
    if (type === 'IHDR') {
      width = body.readUInt32BE(0)
      height = body.readUInt32BE(4)
      const bitDepth = body[8]!
      channels = CHANNELS[body[9]!] ?? 0
      if (bitDepth !== 8 || channels === 0 || body[12] !== 0) throw new Error(`PNG of bit depth ${bitDepth}, colour type ${body[9]}, interlace ${body[12]}: not read here`)
    } else if (type === 'IDAT') data.push(body)
    at += 12 + length
  }
  const raw = inflateSync(Buffer.concat(data))
  const stride = width * channels
  const pixels = Buffer.alloc(stride * height)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    const out = pixels.subarray(y * stride, (y + 1) * stride)
    const up = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride)
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[x - channels]! : 0
      const b = up[x]!
      const c = x >= channels ? up[x - channels]! : 0
      const predictor = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : paeth(a, b, c)
      out[x] = (line[x]! + predictor) & 0xff
    }
  }
  return { width, height, channels, pixels }
}

/** Variance of the pixels' luminance (0..255²): 0 for a blank image. */
export function luminanceVariance(png: DecodedPng): number {
  let sum = 0
  let sumSq = 0
  const n = png.width * png.height
  for (let i = 0; i < n; i++) {
    const p = i * png.channels
    const rgb = png.channels >= 3 ? 0.299 * png.pixels[p]! + 0.587 * png.pixels[p + 1]! + 0.114 * png.pixels[p + 2]! : png.pixels[p]!
    sum += rgb
    sumSq += rgb * rgb
  }
  const mean = sum / n
  return sumSq / n - mean * mean
}

/** How many pixels are close to a colour (each channel within `tolerance`). */
export function countColour(png: DecodedPng, rgb: [number, number, number], tolerance = 40): number {
  let count = 0
  for (let i = 0; i < png.width * png.height; i++) {
    const p = i * png.channels
    if (png.channels >= 3 && rgb.every((v, k) => Math.abs(png.pixels[p + k]! - v) <= tolerance) && (png.channels < 4 || png.pixels[p + 3]! > 128)) count++
  }
  return count
}
