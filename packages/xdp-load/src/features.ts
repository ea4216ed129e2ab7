import { probeFeatures } from '@kbx/bpf'
import type { FeatureReport } from '@kbx/bpf'
import { probeAfXdp, probeZeroCopy } from '@kbx/xsk'
import { checkInterface } from './load.js'
import { probeLibxdpDispatcher } from './libxdp-probe.js'

/** Everything kbx needs from this kernel (and interface), each probed. */
export function features(iface?: string): FeatureReport {
  if (iface !== undefined) checkInterface(iface)
  const report = probeFeatures(iface)
  if (iface === undefined) return report
  const afXdp = probeAfXdp(iface)
  report.afXdp = afXdp.ok
  if (!afXdp.ok) {
    report.failures.afXdp = { op: afXdp.operation ?? 'bind AF_XDP socket', ...errnoFields(afXdp), message: afXdp.hint ?? 'AF_XDP socket did not bind' }
  }
  const libxdp = probeLibxdpDispatcher(checkInterface(iface))
  report.libxdpDispatcher = libxdp.ok
  if (libxdp.failure) report.failures.libxdpDispatcher = libxdp.failure
  const zeroCopy = probeZeroCopy(iface)
  report.zeroCopy = zeroCopy.ok && zeroCopy.zeroCopy
  if (!report.zeroCopy) {
    report.failures.zeroCopy = {
      op: zeroCopy.operation ?? 'bind AF_XDP socket with XDP_ZEROCOPY',
      ...errnoFields(zeroCopy),
      message: 'the driver has no zero-copy AF_XDP; kbx uses copy mode',
    }
  }
  return report
}

function errnoFields(r: { errno?: number; code?: string }): { errno?: number; code?: string } {
  return { ...(r.errno === undefined ? {} : { errno: r.errno }), ...(r.code === undefined ? {} : { code: r.code }) }
}

const LABELS: [keyof FeatureReport, string][] = [
  ['xdpNative', 'XDP native (driver) mode'],
  ['xdpSkb', 'XDP skb (generic) mode'],
  ['bpfLink', 'XDP through bpf_link'],
  ['afXdp', 'AF_XDP sockets'],
  ['zeroCopy', 'AF_XDP zero-copy'],
  ['btf', 'BTF'],
  ['atomics', 'BPF atomics'],
  ['spinLocks', 'BPF spin locks'],
  ['lruMaps', 'LRU hash maps'],
  ['tailCalls', 'tail calls'],
  ['progTestRun', 'BPF_PROG_TEST_RUN'],
  ['liveFrames', 'test run with live frames'],
  ['freplace', 'freplace (libxdp multi-program dispatcher)'],
  ['libxdpDispatcher', "libxdp's dispatcher, two programs attached (kbx's own dispatcher works without it)"],
]

export function formatFeatures(report: FeatureReport): string {
  const lines = [`kernel ${report.kernel}, libbpf ${report.libbpf}${report.iface ? `, interface ${report.iface}` : ''}`]
  for (const [key, label] of LABELS) {
    const value = report[key]
    if (value === undefined) continue
    const failure = report.failures[key as keyof FeatureReport['failures']]
    const why = failure ? `  (${failure.code ?? ''}${failure.code ? ': ' : ''}${failure.op})` : ''
    lines.push(`  ${value ? 'yes' : 'no '}  ${label}${why}`)
  }
  if (report.multiQueue) lines.push(`  queues: ${report.multiQueue.rxQueues} rx, ${report.multiQueue.txQueues} tx`)
  return lines.join('\n') + '\n'
}
