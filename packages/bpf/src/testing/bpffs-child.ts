/** Child for system.test.ts, run under `ip netns exec` (a fresh /sys without bpffs): mounts it, pins a map, reads it back. */
import { bpfObjectPath } from '@kbx/ffi'
import { BpfMap, BpfObject, ensureBpffs, isBpffsMounted } from '../index.js'

const before = isBpffsMounted()
const first = ensureBpffs()
const second = ensureBpffs()
const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
obj.load()
const path = '/sys/fs/bpf/kbx-child-stats'
obj.map('stats').pin(path)
const pinned = BpfMap.fromPin(path)
const sameMap = pinned.info().id === obj.map('stats').info().id
BpfMap.unpin(path)
process.stdout.write(`${JSON.stringify({ before, first, second, after: isBpffsMounted(), sameMap })}\n`)
