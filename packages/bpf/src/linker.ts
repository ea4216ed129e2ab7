import { libbpf } from '@kbx/ffi'
import { bpfError, errnoOf } from './errors.js'
import { collectLibbpfMessages } from './libbpf-log.js'

/**
 * Links BPF objects into one with libbpf's static linker (bpf_linker, what `bpftool gen object` runs):
 * sections of the same name are concatenated, extern symbols resolved against the other objects' globals,
 * BTF merged. Throws a BpfError whose detail carries libbpf's reason (a conflicting symbol, a license that
 * differs, an unresolved extern).
 */
export function linkObjects(output: string, inputs: readonly string[]): void {
  const lib = libbpf()
  collectLibbpfMessages((messages) => {
    const linker = lib.bpf_linker__new(output, null)
    if (!linker) throw bpfError(`create BPF linker for ${output}`, errnoOf(null), { messages })
    try {
      for (const input of inputs) {
        const ret = lib.bpf_linker__add_file(linker, input, null)
        if (ret !== 0) throw bpfError(`link ${input} into ${output}`, errnoOf(ret), { messages })
      }
      const ret = lib.bpf_linker__finalize(linker)
      if (ret !== 0) throw bpfError(`finish linking ${output}`, errnoOf(ret), { messages })
    } finally {
      lib.bpf_linker__free(linker)
    }
  })
}
