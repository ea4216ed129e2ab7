import type { XdpAttachMode } from '@kbx/bpf'
import { loadChain } from './chain-load.js'
import type { ChainLoadResult, ComponentRequest } from './chain-load.js'
import { chooseDispatcher } from './dispatcher-choice.js'
import type { DispatcherKind, ProbeVerdict } from './dispatcher-choice.js'
import { carriedBy, loadThroughLibxdp } from './libxdp-attach.js'
import type { LibxdpLoadResult } from './libxdp-attach.js'
import { probeLibxdpDispatcherOnce } from './libxdp-probe.js'
import type { LibxdpProbe } from './libxdp-probe.js'
import { checkInterface } from './load.js'

export interface DispatchedLoadRequest {
  iface: string
  components: ComponentRequest[]
  mode: XdpAttachMode
  /** --dispatcher KIND; undefined when not given. */
  asked: DispatcherKind | undefined
  throughDispatcher: boolean
  log: { info(msg: string): void }
}

/** The probe as the choice reads it; a failure without an errno (libxdp.so.1 missing) gives its message as the reason. */
function verdictOf(probe: LibxdpProbe): ProbeVerdict {
  const f = probe.failure
  if (!f) return { ok: probe.ok }
  const reason = probe.reason ?? (f.errno === undefined ? f.message : undefined)
  return { ok: probe.ok, op: f.op, ...(f.errno === undefined ? {} : { errno: f.errno }), ...(f.code === undefined ? {} : { code: f.code }), ...(reason ? { reason } : {}) }
}

/**
 * `xdp-load load` with the dispatcher chosen by chooseDispatcher: undefined when the one object is to be
 * attached directly (the caller does that), else the load through kbx's or libxdp's dispatcher.
 */
export function loadWithDispatcher(req: DispatchedLoadRequest): { kbx: ChainLoadResult } | { libxdp: LibxdpLoadResult } | undefined {
  const ifindex = checkInterface(req.iface)
  const choice = chooseDispatcher({
    iface: req.iface,
    asked: req.asked,
    throughDispatcher: req.throughDispatcher,
    carried: carriedBy(req.iface),
    probe: () => verdictOf(probeLibxdpDispatcherOnce(ifindex)),
  })
  if ('refuse' in choice) throw choice.refuse
  if (choice.use === 'direct') return undefined
  if (choice.use === 'libxdp') return { libxdp: loadThroughLibxdp({ iface: req.iface, components: req.components, mode: req.mode }) }
  if (choice.whyNotLibxdp) req.log.info(choice.whyNotLibxdp)
  return { kbx: loadChain({ iface: req.iface, components: req.components, mode: req.mode, log: (m) => req.log.info(m) }) }
}
