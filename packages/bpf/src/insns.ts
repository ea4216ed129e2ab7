/**
 * A few raw BPF instructions (struct bpf_insn, 8 bytes each) for feature probes, where compiling C is not
 * an option. Encoding per Documentation/bpf/standardization/instruction-set.rst.
 */

export type Insn = [code: number, dst: number, src: number, off: number, imm: number]

export const R0 = 0
export const R1 = 1
export const R2 = 2
export const R3 = 3
export const R6 = 6
export const R10 = 10

const BPF_PSEUDO_MAP_FD = 1

export const movImm = (dst: number, imm: number): Insn => [0xb7, dst, 0, 0, imm]
export const movReg = (dst: number, src: number): Insn => [0xbf, dst, src, 0, 0]
export const addImm = (dst: number, imm: number): Insn => [0x07, dst, 0, 0, imm]
export const call = (helper: number): Insn => [0x85, 0, 0, 0, helper]
export const exit = (): Insn => [0x95, 0, 0, 0, 0]
/** *(u32 *)(dst + off) = imm */
export const storeImm32 = (dst: number, off: number, imm: number): Insn => [0x62, dst, 0, off, imm]
/** *(u64 *)(dst + off) = src */
export const storeReg64 = (dst: number, off: number, src: number): Insn => [0x7b, dst, src, off, 0]
/** if dst == imm goto +off */
export const jeqImm = (dst: number, imm: number, off: number): Insn => [0x15, dst, 0, off, imm]
/** lock *(u64 *)(dst + off) += src, old value into src (BPF_ATOMIC | BPF_FETCH) */
export const atomicFetchAdd64 = (dst: number, off: number, src: number): Insn => [0xdb, dst, src, off, 0x01]
/** dst = map fd: two instruction slots. */
export const loadMapFd = (dst: number, fd: number): Insn[] => [
  [0x18, dst, BPF_PSEUDO_MAP_FD, 0, fd],
  [0, 0, 0, 0, 0],
]

export function assemble(insns: Insn[]): Buffer {
  const out = Buffer.alloc(insns.length * 8)
  insns.forEach(([code, dst, src, off, imm], i) => {
    out.writeUInt8(code, i * 8)
    out.writeUInt8((src << 4) | dst, i * 8 + 1)
    out.writeInt16LE(off, i * 8 + 2)
    out.writeInt32LE(imm, i * 8 + 4)
  })
  return out
}
