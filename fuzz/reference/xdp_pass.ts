/** Reference of bpf/xdp_pass.bpf.c: every frame passes; packets and bytes count it. */
import type { Arrival, Expected, ReferenceModel } from './parse.js'

export const rodata = {}
export function createModel(): ReferenceModel {
  return {
    classify: (a: Arrival): Expected => ({ verdict: 'pass', path: 'pass', counters: { packets: 1n, bytes: BigInt(a.frame.length) } }),
    reset: () => {},
  }
}
