import t from 'tap'
import { bpfObjectPath } from '@kbx/ffi'
import { BpfObject, probeFeatures, queueCounts } from './index.js'
import { createNetns, createVeth, ipXdpOf } from './testing/netns.js'

t.test('probeFeatures on a veth', async (t) => {
  const ns = createNetns(t)
  const { a } = createVeth(ns, { queues: 4 })
  const report = ns.enter(() => probeFeatures(a))
  t.equal(report.iface, a)
  t.match(report.kernel, /^\d+\.\d+/)
  t.match(report.libbpf, /^v1\./)
  for (const feature of ['btf', 'bpfLink', 'atomics', 'spinLocks', 'lruMaps', 'tailCalls', 'progTestRun', 'liveFrames', 'xdpNative', 'xdpSkb'] as const) {
    t.equal(report[feature], true, `${feature} works here`)
    t.equal(report.failures[feature], undefined, `${feature} has no failure`)
  }
  // Kernel-dependent (this project's VMs refuse BPF_PROG_TYPE_EXT): either answer, but a refusal says why.
  if (report.freplace) t.equal(report.failures.freplace, undefined, 'freplace works: no failure recorded')
  else {
    t.ok(report.failures.freplace?.errno, 'freplace refused, with the errno')
    t.match(report.failures.freplace?.op, /EXT|freplace/, 'and the failing step')
  }
  t.same(report.multiQueue, { rxQueues: 4, txQueues: 4, multi: true, source: 'netlink' }, 'queues of a veth inside a namespace come from netlink')
  t.same(ipXdpOf(ns, a), [], 'the probes detached again')
  t.equal(report.afXdp, undefined, 'AF_XDP is left to @kbx/xsk')
  t.same(JSON.parse(JSON.stringify(report)), report, 'the report is plain JSON')
})

t.test('probeFeatures without an interface probes links on lo', async (t) => {
  const ns = createNetns(t)
  const report = ns.enter(() => probeFeatures())
  t.equal(report.bpfLink, true)
  t.equal(report.xdpNative, undefined)
  t.equal(report.multiQueue, undefined)
  t.same(ipXdpOf(ns, 'lo'), [])
})

t.test('an interface that already has XDP reports the attach probes false, with EBUSY', async (t) => {
  const ns = createNetns(t)
  const { a } = createVeth(ns)
  const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
  t.teardown(() => obj.close())
  obj.load()
  const link = ns.enter(() => obj.program().attachXdp(a, 'native'))
  t.teardown(() => link.close())
  const report = ns.enter(() => probeFeatures(a))
  t.equal(report.xdpNative, false)
  t.equal(report.failures.xdpNative?.code, 'EBUSY')
  t.equal(report.xdpSkb, false)
  t.equal(report.bpfLink, false)
  t.equal(ipXdpOf(ns, a).length, 1, 'the existing program is untouched')
})

t.test('queue counts from sysfs in the namespace sysfs belongs to', async (t) => {
  const counts = queueCounts('lo')
  t.equal(counts.source, 'sysfs')
  t.equal(counts.rxQueues, 1)
  t.equal(counts.multi, false)
})
