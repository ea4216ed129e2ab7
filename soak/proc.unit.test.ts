import t from 'tap'
import { parseCpuTicks, parseVmRssMB, readProcess } from './proc.js'

t.test('VmRSS and utime + stime from /proc text, names with spaces and parentheses', async (t) => {
  t.equal(parseVmRssMB('Name:\tnode\nVmPeak:\t 999 kB\nVmRSS:\t  102400 kB\n'), 100)
  t.equal(parseVmRssMB('Name:\tzombie\nState:\tZ (zombie)\n'), undefined)
  const stat = '4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 10'
  t.equal(parseCpuTicks(stat), 325)
})

t.test('this process, read like any other', async (t) => {
  const me = readProcess(process.pid)
  t.ok(me && me.rssMB > 10 && me.cpuSec > 0, JSON.stringify(me))
  t.equal(me?.name, 'node')
  t.equal(readProcess(2 ** 22 + 1), undefined, 'a pid that does not exist')
})
