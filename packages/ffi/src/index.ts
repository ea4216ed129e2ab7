export { koffi, repoRoot, nativeLibraryPath, bpfObjectPath, openLibrary, lastErrno } from './load.js'
export * from './libc.js'
export * from './libbpf.js'
export * from './libkbx.js'
