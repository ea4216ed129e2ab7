import t from 'tap'
import { KbxError, UsageError } from '@kbx/errors'
import { bpfObjectPath, koffi, libbpf, BpfTestRunOpts, BPF_F_TEST_RUN_ON_CPU } from '@kbx/ffi'
import { BpfObject, readCounters, resolveIfindex, xdpVerdictName } from './index.js'
import * as F from './testing/frames.js'
import { createNetns, createVeth } from './testing/netns.js'

function loadPass(): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
  t.teardown(() => obj.close())
  obj.load()
  return obj
}

t.test('verdict names', async (t) => {
  t.same([0, 1, 2, 3, 4].map(xdpVerdictName), ['aborted', 'drop', 'pass', 'tx', 'redirect'])
  t.equal(xdpVerdictName(7), 'unknown(7)')
})

t.test('repeat runs the program that many times', async (t) => {
  const obj = loadPass()
  const result = obj.program().testRun({ data: F.udp(), repeat: 1000 })
  t.equal(result.verdict, 'pass')
  t.equal(typeof result.durationNs, 'number')
  t.equal(readCounters(obj.map('stats'))['packets'], 1000n)
  t.throws(() => obj.program().testRun({ data: F.udp(), repeat: 0 }), UsageError)
})

t.test('ctx in and out', async (t) => {
  const obj = loadPass()
  const frame = F.udp()
  const result = obj.program().testRun({ data: frame, ctx: { ingressIfindex: resolveIfindex('lo'), rxQueueIndex: 0 } })
  t.equal(result.ctxOut?.ingressIfindex, resolveIfindex('lo'))
  t.equal(result.ctxOut?.dataEnd, frame.length)
})

t.test('the kernel refuses BPF_F_TEST_RUN_ON_CPU for XDP; cpu pins the thread instead', async (t) => {
  const obj = loadPass()
  const prog = obj.program()
  const data = F.udp()
  const opts = { sz: koffi.sizeof(BpfTestRunOpts), data_in: data, data_size_in: data.length, repeat: 1, flags: BPF_F_TEST_RUN_ON_CPU, cpu: 0 }
  t.equal(libbpf().bpf_prog_test_run_opts(prog.fd, opts), -22, 'EINVAL from the kernel')
  t.equal(prog.testRun({ data, cpu: 0 }).verdict, 'pass', 'cpu 0 through affinity')
  t.throws(() => prog.testRun({ data, cpu: -1 }), UsageError)
  try {
    prog.testRun({ data, cpu: 1000 })
    t.fail('ran on a CPU that does not exist')
  } catch (err) {
    t.ok(err instanceof KbxError && err.code === 'EINVAL', 'a CPU that is not there: EINVAL from sched_setaffinity')
  }
})

t.test('live frames run the program on real frames of an interface', async (t) => {
  const ns = createNetns(t)
  const { a } = createVeth(ns)
  const obj = loadPass()
  const result = ns.enter(() =>
    obj.program().testRun({ data: F.udp(), live: true, repeat: 5, ctx: { ingressIfindex: resolveIfindex(a), rxQueueIndex: 0 } }),
  )
  t.equal(result.dataOut.length, 0, 'nothing copied back')
  t.equal(readCounters(obj.map('stats'))['packets'], 5n, 'ran once per repetition')
})
