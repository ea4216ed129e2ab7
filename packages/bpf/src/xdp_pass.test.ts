import t from 'tap'
import { bpfObjectPath } from '@kbx/ffi'
import { BpfObject, numPossibleCpus, readCounters } from './index.js'
import { runFixtures, type XdpFixture } from './testing/index.js'
import * as F from './testing/frames.js'

function openPass(): BpfObject {
  const obj = BpfObject.open(bpfObjectPath('xdp_pass'))
  t.teardown(() => obj.close())
  obj.load()
  return obj
}

const frames: [string, Buffer][] = [
  ['udp', F.udp()],
  ['udp with two VLAN tags', F.udp({ vlans: [1, 2], outerVlanTpid: 0x88a8 })],
  ['udp with IPv4 options', F.udp({ options: F.ipOptions(12) })],
  ['udp first fragment', F.udp({ moreFragments: true })],
  ['udp later fragment', F.udp({ fragmentOffset: 64 })],
  ['tcp', F.tcp()],
  ['ipv6 udp', F.udp6()],
  ['arp', F.arp('request')],
  ['runt: Ethernet header only', F.udp().subarray(0, 14)],
  ['truncated IPv4 header', F.udp().subarray(0, 30)],
  ['broken ihl', F.patchIpv4(F.udp(), (ip) => (ip[0] = 0x41))],
  ['jumbo-ish 3000 bytes', F.udp({ payload: Buffer.alloc(3000 - 42, 0xab) })],
]

t.test('kbx_pass passes every frame untouched and counts it', async (t) => {
  const obj = openPass()
  const prog = obj.program()
  t.equal(prog.name, 'kbx_pass')
  const stats = obj.map('stats')
  t.same(stats.valueFields().map((f) => f.name), ['packets', 'bytes'])
  const fixtures: XdpFixture[] = frames.map(([name, data]) => ({ name, data, verdict: 'pass' }))
  runFixtures(t, prog, fixtures, { stats, everyRun: (f) => ({ packets: 1n, bytes: BigInt(f.data.length) }) })
  const total = frames.reduce((sum, [, data]) => sum + BigInt(data.length), 0n)
  t.same(readCounters(stats), { packets: BigInt(frames.length), bytes: total })
})

t.test('per-CPU slots: runs pinned to each CPU land in that CPU slot', async (t) => {
  const obj = openPass()
  const prog = obj.program()
  const stats = obj.map('stats')
  const key = Buffer.alloc(4)
  const cpus = Math.min(numPossibleCpus(), 2)
  t.ok(cpus >= 1)
  for (let cpu = 0; cpu < cpus; cpu++) prog.testRun({ data: F.udp(), repeat: 10 * (cpu + 1), cpu })
  const perCpu = stats.lookupPerCpu(key)
  t.equal(perCpu?.length, numPossibleCpus(), 'one value per possible CPU')
  for (let cpu = 0; cpu < cpus; cpu++) {
    t.equal(perCpu?.[cpu]?.readBigUInt64LE(0), BigInt(10 * (cpu + 1)), `cpu ${cpu} ran ${10 * (cpu + 1)} times`)
  }
  const expected = BigInt((cpus * (cpus + 1) * 10) / 2)
  t.same(stats.sumPerCpuU64(key), [expected, expected * BigInt(F.udp().length)], 'sum over CPUs, per field')
})
