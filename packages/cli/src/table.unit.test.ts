import t from 'tap'
import { Command } from 'commander'
import { UsageError } from '@kbx/errors'
import { commonOptions } from './common.js'
import { choiceOption, flagOption, intOption, optionTable, scaledIntOption, secondsOption, stringOption, valueOption } from './table.js'
import type { OptionsOf } from './table.js'

const table = optionTable({
  rate: scaledIntOption('--rate <pps>', 'packets per second', { default: 0 }),
  size: intOption('--size <bytes>', 'payload', { min: 36, max: 1472 }),
  io: choiceOption('--io <io>', 'xdp or socket', ['xdp', 'socket'], { default: 'xdp' }),
  side: choiceOption('--side <side>', 'Side', ['buy', 'sell'], { default: 'buy', listed: true }),
  iface: stringOption('--iface <name>', 'interface', { required: true }),
  pcap: stringOption('--pcap <file>', 'capture'),
  linger: secondsOption('--linger <s>', 'linger', { min: 0, default: 0 }),
  reset: flagOption('--reset', 'reset'),
  reflex: flagOption('--no-reflex', 'no reflex'),
  field: valueOption('--field <x>', 'repeatable', (v: string, previous: string[] | undefined) => [...(previous ?? []), v]),
  secret: intOption('--secret <n>', 'hidden', { default: 7, hidden: true }),
  ...commonOptions,
})
type Parsed = OptionsOf<typeof table>

function parse(argv: string[]): Parsed {
  const program = new Command('t').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} })
  table.register(program)
  program.parse(argv, { from: 'user' })
  return table.values(program)
}

t.test('defaults and absent options', async (t) => {
  const o = parse(['--iface', 'veth0'])
  t.same(o, { rate: 0, io: 'xdp', side: 'buy', iface: 'veth0', linger: 0, reflex: true, secret: 7, mode: 'auto', queue: 0, duration: 0, interval: 1, live: true })
  t.notOk('pcap' in o, 'an absent option without default is left out')
})

t.test('values parsed by the declaration', async (t) => {
  const o = parse(['--iface', 'x', '--rate', '10k', '--size', '64', '--io', 'socket', '--side', 'sell', '--pcap', 'a.pcap', '--linger', '500ms', '--reset', '--no-reflex', '--field', 'a', '--field', 'b', '--mode', 'skb', '--queue', '3'])
  t.equal(o.rate, 10_000)
  t.equal(o.size, 64)
  t.equal(o.io, 'socket')
  t.equal(o.side, 'sell')
  t.equal(o.pcap, 'a.pcap')
  t.equal(o.linger, 0.5)
  t.equal(o.reset, true)
  t.equal(o.reflex, false)
  t.same(o.field, ['a', 'b'])
  t.equal(o.mode, 'skb')
  t.equal(o.queue, 3)
})

t.test('bad values: the parser UsageError (exit 2) or commander refusing', async (t) => {
  t.throws(() => parse(['--iface', 'x', '--size', '35']), UsageError)
  t.throws(() => parse(['--iface', 'x', '--size', '35']), { message: '--size: expected an integer from 36 to 1472, got "35"' })
  t.throws(() => parse(['--iface', 'x', '--io', 'tcp']), { message: '--io: expected one of xdp, socket, got "tcp"' })
  t.throws(() => parse(['--iface', 'x', '--side', 'hold']), { code: 'commander.invalidArgument' })
  t.throws(() => parse([]), { code: 'commander.missingMandatoryOptionValue' })
})

t.test('help: hidden options left out, choices listed', async (t) => {
  const program = new Command('t')
  table.register(program)
  const help = program.helpInformation()
  t.notMatch(help, /--secret/)
  t.match(help, /--side <side> +Side \(choices: "buy", "sell", default: "buy"\)/)
  t.match(help, /--rate <pps> +packets per second \(default: 0\)/)
})

t.test('a key that is not commander\'s name for its flag is refused', async (t) => {
  const wrong = optionTable({ rates: intOption('--rate <n>', 'x') })
  t.throws(() => wrong.register(new Command('t')), { message: /key "rates" does not match --rate <n> \(commander calls it "rate"\)/ })
})

t.test('types: present values required, the others optional', async (t) => {
  const o = parse(['--iface', 'x'])
  const rate: number = o.rate
  const size: number | undefined = o.size
  // @ts-expect-error an optional value is not a number
  const sizeNumber: number = o.size
  const reflex: boolean = o.reflex
  t.equal(rate + (size ?? 0) + (sizeNumber ?? 0), 0)
  t.equal(reflex, true)
})
