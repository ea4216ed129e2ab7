/** Child for link.test.ts: attaches xdp_pass to argv[2] in mode argv[3], reports the ids, then waits to be killed. */
import { bpfObjectPath } from '@kbx/ffi'
import { BpfObject, type XdpAttachMode } from '../index.js'

const [iface, mode] = process.argv.slice(2)
const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
obj.load()
const link = obj.program().attachXdp(iface ?? '', (mode ?? 'auto') as XdpAttachMode)
process.stdout.write(`${JSON.stringify({ linkId: link.id, progId: link.progId, mode: link.mode })}\n`)
setInterval(() => undefined, 1 << 30)
