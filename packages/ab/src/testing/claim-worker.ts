// Worker of program.test.ts: runs frames through a program fd on one CPU, meeting the other worker at a
// spin barrier before every frame so both claims land at the same moment. Posts the retvals.
import { parentPort, workerData } from 'node:worker_threads'
import { koffi, libbpf, BpfTestRunOpts } from '@kbx/ffi'
import { onCpu } from '@kbx/bpf'

const { fd, cpu, frames, barrier } = workerData as { fd: number; cpu: number; frames: Uint8Array[]; barrier: Int32Array }
const out = Buffer.alloc(4096)
const verdicts = onCpu(cpu, () =>
  frames.map((frame, i) => {
    Atomics.add(barrier, 0, 1)
    while (Atomics.load(barrier, 0) < 2 * (i + 1));
    const opts = {
      sz: koffi.sizeof(BpfTestRunOpts), data_in: frame, data_out: out, data_size_in: frame.length, data_size_out: out.length,
      ctx_in: null, ctx_out: null, ctx_size_in: 0, ctx_size_out: 0, retval: 0, repeat: 1, duration: 0, flags: 0, cpu: 0, batch_size: 0,
    }
    if (libbpf().bpf_prog_test_run_opts(fd, opts) !== 0) throw new Error('test run failed')
    return opts.retval
  }),
)
parentPort!.postMessage(verdicts)
