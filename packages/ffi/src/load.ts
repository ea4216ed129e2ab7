import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import koffi from 'koffi'
import { KbxError } from '@kbx/errors'

export { koffi }

/** The repository root: this file lives in packages/ffi/{src,dist}/. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

/** Path of the compiled native helper library (native/build/libkbx.so unless KBX_NATIVE_LIB says otherwise). */
export function nativeLibraryPath(): string {
  return process.env['KBX_NATIVE_LIB'] ?? join(repoRoot, 'native/build/libkbx.so')
}

/** Path of a compiled XDP object in bpf/build (or KBX_BPF_DIR), e.g. bpfObjectPath('xdp_pass'). */
export function bpfObjectPath(name: string): string {
  return join(process.env['KBX_BPF_DIR'] ?? join(repoRoot, 'bpf/build'), `${name}.o`)
}

/** Open a shared library, trying each candidate name; fails with a hint naming the package to install. */
export function openLibrary(what: string, candidates: string[], hint: string): koffi.IKoffiLib {
  let lastError: unknown
  for (const candidate of candidates) {
    if (candidate.startsWith('/') && !existsSync(candidate)) continue
    try {
      return koffi.load(candidate)
    } catch (err) {
      lastError = err
    }
  }
  throw new KbxError(`cannot load ${what} (tried ${candidates.join(', ')})`, {
    op: `load ${what}`,
    hint,
    cause: lastError,
  })
}

/** errno left by the last foreign call on this thread. */
export function lastErrno(): number {
  return koffi.errno()
}
