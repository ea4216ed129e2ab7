import t from 'tap'
import { thrown } from '@kbx/errors/testing'
import { PermissionError } from '@kbx/errors'
import { effectiveCapabilities, missingCapabilities, requirePrivileges } from './privileges.js'

const status = (capEff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`
const bits = (...caps: number[]) => caps.reduce((acc, c) => acc | (1n << BigInt(c)), 0n).toString(16).padStart(16, '0')

t.test('effectiveCapabilities parses CapEff', async (t) => {
  t.equal(effectiveCapabilities(status('000001fffeffffff')), 0x1fffeffffffn)
  t.equal(effectiveCapabilities('nothing here'), 0n)
})

t.test('root passes without reading status', async (t) => {
  t.doesNotThrow(() =>
    requirePrivileges('xdp-load', {
      euid: () => 0,
      readStatus: () => {
        throw new Error('must not be read')
      },
    }),
  )
})

t.test('non-root with the capabilities passes; CAP_SYS_ADMIN stands in for CAP_BPF', async (t) => {
  t.doesNotThrow(() => requirePrivileges('x', { euid: () => 1000, readStatus: () => status(bits(39, 12, 13)) }))
  t.doesNotThrow(() => requirePrivileges('x', { euid: () => 1000, readStatus: () => status(bits(21, 12, 13)) }))
  t.same(missingCapabilities(BigInt('0x' + bits(12, 13))), ['BPF'])
  t.same(missingCapabilities(BigInt('0x' + bits(13)), ['NET_RAW']), [])
})


t.test('non-root lacking capabilities gets a plain PermissionError', async (t) => {
  const check = (caps: string) => () => requirePrivileges('xdp-load', { euid: () => 1000, readStatus: () => status(caps) })
  t.throws(check(bits()), PermissionError)
  t.match(thrown(check(bits(39, 12))), { message: 'xdp-load needs root: run it with sudo', hint: /CAP_NET_RAW/, exitCode: 1 })
  t.match(thrown(check(bits(12, 13))), { hint: /CAP_BPF/ })
  t.throws(() => requirePrivileges('x', { euid: () => 1000, readStatus: () => { throw new Error('no /proc') } }), PermissionError)
})

t.test('the real process (root here) passes', async (t) => {
  t.doesNotThrow(() => requirePrivileges('x'))
})
