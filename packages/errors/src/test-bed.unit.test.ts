import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { setupNetCommand, testBedAddressHint, unknownInterfaceHint } from './test-bed.js'

const setupNet = readFileSync(fileURLToPath(new URL('../../../scripts/setup_net.sh', import.meta.url)), 'utf8')

t.test('a test-bed interface names the command that creates it and its namespace', async (t) => {
  t.match(unknownInterfaceHint('vethA_dst'), /ab test bed: create it with `bash \S*scripts\/setup_net\.sh up ab`/)
  t.notMatch(unknownInterfaceHint('vethA_dst'), /netns exec/)
  t.match(unknownInterfaceHint('veth1'), /quic test bed.*`ip netns exec ns1`/)
  t.match(unknownInterfaceHint('fix0'), /setup_net\.sh up fix/)
  t.match(unknownInterfaceHint('fix0'), /otherwise see `ip link`/)
})

t.test('any other interface gets the plain hint', async (t) => {
  t.equal(unknownInterfaceHint('eth7'), 'see `ip link`')
  t.equal(unknownInterfaceHint('eth7', 'see `ip -n x link`'), 'see `ip -n x link`')
  t.equal(unknownInterfaceHint('toString'), 'see `ip link`')
})

t.test('test-bed addresses get a hint, others none', async (t) => {
  t.match(testBedAddressHint('10.0.0.11'), /quic test bed.*ip netns exec ns1/)
  t.match(testBedAddressHint('10.0.3.1'), /setup_net\.sh up fix/)
  t.equal(testBedAddressHint('192.0.2.1'), undefined)
})

t.test('the command is relative from the repository root, absolute from elsewhere', async (t) => {
  const cwd = process.cwd()
  try {
    process.chdir(fileURLToPath(new URL('../../..', import.meta.url)))
    t.equal(setupNetCommand('quic'), 'bash scripts/setup_net.sh up quic')
    process.chdir('/')
    t.match(setupNetCommand('quic'), /^bash \/\S+\/scripts\/setup_net\.sh up quic$/)
  } finally {
    process.chdir(cwd)
  }
})

t.test('the names match what scripts/setup_net.sh creates', async (t) => {
  for (const [bed, names] of Object.entries({ quic: ['veth0', 'veth1', '10.0.0.10', '10.0.0.11'], ab: ['vethA_dst', 'vethB_src', '10.0.1.2', '10.0.2.1'], fix: ['fix0', 'fix1', '10.0.3.1', '10.0.3.2'] })) {
    for (const name of names) {
      t.ok(setupNet.includes(name), `${name} is in setup_net.sh`)
      const hint = /^\d/.test(name) ? testBedAddressHint(name) : unknownInterfaceHint(name)
      t.match(hint, new RegExp(`${bed} test bed`), `${name} → ${bed}`)
    }
  }
})
