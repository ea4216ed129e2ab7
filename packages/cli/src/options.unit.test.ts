import t from 'tap'
import { Command } from 'commander'
import { UsageError } from '@kbx/errors'
import { addCommonOptions, OUTPUT_OPTIONS } from './common.js'
import {
  parseChoice,
  parseIntOption,
  parseInterfaceName,
  parseIpPort,
  parseIPv4Option,
  parseLogLevel,
  parseMacOption,
  parseMode,
  parseScaledInt,
  parseSeconds,
  resolveLogLevel,
} from './options.js'

t.test('parseIntOption', async (t) => {
  const q = parseIntOption('--queue', { min: 0, max: 63 })
  t.equal(q('0'), 0)
  t.equal(q('63'), 63)
  t.equal(q(' 7 '), 7)
  t.equal(q('0x10'), 16)
  for (const bad of ['', '-1', '64', '1.5', 'abc', '1e3', '3x']) {
    t.throws(() => q(bad), UsageError, `rejects ${JSON.stringify(bad)}`)
  }
  t.throws(() => q('64'), { message: '--queue: expected an integer from 0 to 63, got "64"', exitCode: 2 })
  t.equal(parseIntOption('--n')('-5'), -5)
  t.throws(() => parseIntOption('--n', { min: 1 })('0'), { message: /≥ 1/ })
})

t.test('parseScaledInt', async (t) => {
  const rate = parseScaledInt('--rate')
  t.equal(rate('64'), 64)
  t.equal(rate('10k'), 10_000)
  t.equal(rate('1.5M'), 1_500_000)
  t.equal(rate('2G'), 2_000_000_000)
  t.throws(() => rate('1.5'), UsageError, 'fractional result')
  t.throws(() => rate('1T'), UsageError)
  t.throws(() => parseScaledInt('--rate', { max: 1000 })('2k'), UsageError)
})

t.test('parseSeconds', async (t) => {
  const s = parseSeconds('--duration')
  t.equal(s('10'), 10)
  t.equal(s('2.5'), 2.5)
  t.equal(s('.5'), 0.5)
  t.equal(s('500ms'), 0.5)
  t.equal(s('2m'), 120)
  t.equal(s('1h'), 3600)
  t.equal(s('0'), 0)
  for (const bad of ['-1', 'x', '1d', '', '1.2.3']) t.throws(() => s(bad), UsageError, `rejects ${JSON.stringify(bad)}`)
  t.throws(() => parseSeconds('--interval', { min: 0.01 })('0'), UsageError)
})

t.test('parseMode, parseChoice, parseLogLevel', async (t) => {
  t.equal(parseMode('native'), 'native')
  t.equal(parseMode('skb'), 'skb')
  t.equal(parseMode('auto'), 'auto')
  t.throws(() => parseMode('drv'), { message: '--mode: expected one of native, skb, auto, got "drv"' })
  t.equal(parseChoice('--x', ['a', 'b'] as const)('b'), 'b')
  t.equal(parseLogLevel('trace'), 'trace')
  t.throws(() => parseLogLevel('verbose'), UsageError)
})

t.test('parseIpPort and friends', async (t) => {
  t.same(parseIpPort('10.0.0.11:8004'), { ip: '10.0.0.11', port: 8004 })
  t.same(parseIpPort('255.255.255.255:65535'), { ip: '255.255.255.255', port: 65535 })
  for (const bad of ['10.0.0.11', '10.0.0.256:1', '10.0.0.1:0', '10.0.0.1:65536', 'host:80', ':80', '10.0.0.01:80']) {
    t.throws(() => parseIpPort(bad, '--dest'), UsageError, `rejects ${bad}`)
  }
  t.equal(parseIPv4Option('--ip')('192.168.1.1'), '192.168.1.1')
  t.throws(() => parseIPv4Option('--ip')('1.2.3'), UsageError)
  t.equal(parseInterfaceName('vethA_src'), 'vethA_src')
  t.throws(() => parseInterfaceName('a'.repeat(16)), UsageError)
  t.throws(() => parseInterfaceName('a/b'), UsageError)
  t.equal(parseMacOption('--mac')('02:AA:bb:cc:dd:ee'), '02:aa:bb:cc:dd:ee')
  t.throws(() => parseMacOption('--mac')('02:aa:bb:cc:dd'), UsageError)
})

t.test('addCommonOptions: defaults, parsing, json/no-json, repeatable -v', async (t) => {
  const make = () => {
    const cmd = new Command('x').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} })
    addCommonOptions(cmd, ['mode', 'queue', 'duration', 'interval', ...OUTPUT_OPTIONS])
    addCommonOptions(cmd) // twice is harmless
    return cmd
  }
  t.same(make().parse([], { from: 'user' }).opts(), { mode: 'auto', queue: 0, duration: 0, interval: 1, json: true, logLevel: 'info', verbose: 0 })
  t.same(
    make()
      .parse(['--mode', 'skb', '--queue', '3', '--duration', '5', '--interval', '0.5', '--no-json', '--log-level', 'warn', '-vv', '--verbose'], { from: 'user' })
      .opts(),
    { mode: 'skb', queue: 3, duration: 5, interval: 0.5, json: false, logLevel: 'warn', verbose: 3 },
  )
  t.equal(make().parse(['--no-json', '--json'], { from: 'user' }).opts().json, true, 'last one wins')
  t.throws(() => make().parse(['--queue', 'x'], { from: 'user' }), UsageError)
  t.throws(() => make().parse(['--bogus'], { from: 'user' }), { code: 'commander.unknownOption' })
})

t.test('resolveLogLevel', async (t) => {
  t.equal(resolveLogLevel('info', 0), 'info')
  t.equal(resolveLogLevel('info', 1), 'debug')
  t.equal(resolveLogLevel('info', 2), 'trace')
  t.equal(resolveLogLevel('info', 5), 'trace')
  t.equal(resolveLogLevel('trace', 1), 'trace', '--log-level more verbose than -v wins')
  t.equal(resolveLogLevel('error', 1), 'debug')
})
