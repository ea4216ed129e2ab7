import { koffi, libbpf, libc, LibbpfPrintFn, LIBBPF_DEBUG, LIBBPF_INFO, LIBBPF_WARN } from '@kbx/ffi'

/**
 * libbpf's own messages (it prints "libbpf: ..." lines to stderr by default) are routed here: warnings
 * and info are collected for the error being built, and handed to listeners; nothing reaches stderr
 * unless a listener writes it.
 */

export type LibbpfLevel = 'warn' | 'info' | 'debug'
export type LibbpfListener = (level: LibbpfLevel, message: string) => void

const levelNames: Record<number, LibbpfLevel> = { [LIBBPF_WARN]: 'warn', [LIBBPF_INFO]: 'info', [LIBBPF_DEBUG]: 'debug' }
const listeners = new Set<LibbpfListener>()
let capture: string[] | undefined
let installed = false
const formatBuffer = Buffer.alloc(64 * 1024)

function onPrint(level: number, format: string, args: unknown): number {
  const written = libc().vsnprintf(formatBuffer, formatBuffer.length, format, args)
  const length = Math.max(0, Math.min(written, formatBuffer.length - 1))
  const message = formatBuffer.toString('utf8', 0, length).replace(/^libbpf: /, '').trimEnd()
  const name = levelNames[level] ?? 'debug'
  if (capture && name !== 'debug') capture.push(message)
  for (const listener of listeners) listener(name, message)
  return 0
}

/** Route libbpf's print callback to us (once per process). */
export function installLibbpfPrint(): void {
  if (installed) return
  installed = true
  const callback = koffi.register(onPrint, koffi.pointer(LibbpfPrintFn))
  libbpf().libbpf_set_print(callback)
}

/** Receive libbpf's messages (e.g. to log them at debug level). Returns the unsubscribe function. */
export function onLibbpfMessage(listener: LibbpfListener): () => void {
  installLibbpfPrint()
  listeners.add(listener)
  return () => listeners.delete(listener)
}

/**
 * Run fn with a live list of the warn/info messages libbpf prints meanwhile, so an error built inside fn
 * can carry them. Nested calls each see their own messages; the outer list receives the inner ones too.
 */
export function collectLibbpfMessages<T>(fn: (messages: string[]) => T): T {
  installLibbpfPrint()
  const previous = capture
  const messages: string[] = []
  capture = messages
  try {
    return fn(messages)
  } finally {
    capture = previous
    previous?.push(...messages)
  }
}

/** Text for a libbpf error code (covers libbpf's own codes from 4000 up). */
export function libbpfStrerror(errno: number): string {
  const buf = Buffer.alloc(256)
  libbpf().libbpf_strerror(Math.abs(errno), buf, buf.length)
  const end = buf.indexOf(0)
  return buf.toString('utf8', 0, end < 0 ? buf.length : end)
}
