import t from 'tap'
import { UsageError } from '@kbx/errors'
import { channelsFromOptions, checkChannelFormats, formatGroupSpec, isMulticastIPv4, parseGroupSpec, resolveChannels } from './channels.js'
import { parseFeeds } from './feeds.js'

const thrown = (fn: () => unknown): UsageError => {
  try {
    fn()
  } catch (e) {
    if (e instanceof UsageError) return e
    throw e
  }
  throw new Error('did not throw')
}

t.test('GROUP:PORT[@SOURCE]', async (t) => {
  t.same(parseGroupSpec('233.54.12.1:15001', '--group-a'), { group: '233.54.12.1', port: 15001 })
  t.same(parseGroupSpec(' 232.1.1.1:15001@10.9.9.9 ', '--group-a'), { group: '232.1.1.1', port: 15001, source: '10.9.9.9' })
  t.equal(formatGroupSpec(parseGroupSpec('239.255.0.1:1@192.0.2.7', 'x')), '239.255.0.1:1@192.0.2.7')
  t.ok(isMulticastIPv4('224.0.1.1') && isMulticastIPv4('239.255.255.255'))
  t.notOk(isMulticastIPv4('223.255.255.255') || isMulticastIPv4('240.0.0.1') || isMulticastIPv4('nope'))
  const bad: [string, RegExp][] = [
    ['233.54.12.1', /expected GROUP:PORT\[@SOURCE\]/],
    ['233.54.12.1:', /expected GROUP:PORT/],
    ['233.54.12:15001', /is not an IPv4 address/],
    ['10.0.0.1:15001', /10\.0\.0\.1 is a unicast address, not a multicast group/],
    ['240.0.0.1:15001', /unicast address, not a multicast group/],
    ['224.0.0.251:5353', /224\.0\.0\.0\/24 \(local network control\)/],
    ['233.1.1.1:0', /port "0": expected 1\.\.65535/],
    ['233.1.1.1:65536', /port "65536"/],
    ['233.1.1.1:x', /port "x"/],
    ['232.1.1.1:1@233.1.1.1', /source 233\.1\.1\.1 is not a unicast host address/],
    ['232.1.1.1:1@0.0.0.0', /not a unicast host address/],
    ['232.1.1.1:1@127.0.0.1', /not a unicast host address/],
    ['232.1.1.1:1@10.0.0', /source "10\.0\.0" is not an IPv4 address/],
    ['232.1.1.1:1@10.0.0.1@10.0.0.2', /expected GROUP:PORT/],
  ]
  for (const [text, message] of bad) {
    const e = thrown(() => parseGroupSpec(text, '--group-a'))
    t.match(e.message, /^--group-a: /, `names the option: ${text}`)
    t.match(e.message, message, text)
    t.equal(e.exitCode, 2)
  }
})

t.test('channels from --group-a/--group-b pair in order; duplicates and odd counts refused', async (t) => {
  const g = (s: string) => parseGroupSpec(s, 'x')
  const chs = channelsFromOptions([g('233.1.1.1:1'), g('233.1.1.3:2')], [g('233.1.1.2:1'), g('233.1.1.4:2')])
  t.same(chs.map((c) => [c.name, formatGroupSpec(c.a), formatGroupSpec(c.b)]), [['ch1', '233.1.1.1:1', '233.1.1.2:1'], ['ch2', '233.1.1.3:2', '233.1.1.4:2']])
  t.same(channelsFromOptions(), [], 'no groups: a unicast feed')
  t.match(thrown(() => channelsFromOptions([g('233.1.1.1:1')], [])).message, /--group-a given 1 time\(s\), --group-b 0/)
  t.match(thrown(() => channelsFromOptions([g('233.1.1.1:1'), g('233.1.1.1:1')], [g('233.1.1.2:1'), g('233.1.1.3:1')])).message, /233\.1\.1\.1:1 on line A belongs to both ch1 and ch2/)
  // the same group on both lines (different interfaces) is fine, as is one group from two sources
  t.equal(channelsFromOptions([g('233.1.1.1:1'), g('232.1.1.1:1@10.0.0.1')], [g('233.1.1.1:1'), g('232.1.1.1:1@10.0.0.2')]).length, 2)
  t.match(thrown(() => resolveChannels({ feeds: 'f', groupA: [g('233.1.1.1:1')] }, () => [])).message, /--feeds and --group-a\/--group-b both define channels/)
  t.match(thrown(() => checkChannelFormats([{ name: 'itch', a: g('233.1.1.1:1'), b: g('233.1.1.2:1'), format: 'moldudp64' }], 'optiq')).message, /channel itch is moldudp64 but the run arbitrates optiq/)
  checkChannelFormats([{ name: 'itch', a: g('233.1.1.1:1'), b: g('233.1.1.2:1'), format: 'moldudp64' }], 'moldudp64')
})

t.test('feeds files: fields by spaces, tabs or commas, comments, errors with FILE:LINE', async (t) => {
  const chs = parseFeeds('# name A B format\n\ncash 233.54.12.1:15001\t233.54.12.2:15001 optiq\nssm,232.1.1.1:15002@10.9.9.9, 232.1.1.2:15002@10.9.9.10 ,optiq # source-specific\n', 'feeds.txt')
  t.same(
    chs.map((c) => [c.name, formatGroupSpec(c.a), formatGroupSpec(c.b), c.format]),
    [
      ['cash', '233.54.12.1:15001', '233.54.12.2:15001', 'optiq'],
      ['ssm', '232.1.1.1:15002@10.9.9.9', '232.1.1.2:15002@10.9.9.10', 'optiq'],
    ],
  )
  const bad: [string, RegExp][] = [
    ['', /feeds\.txt: no channels/],
    ['# only a comment\n', /no channels/],
    ['cash 233.1.1.1:1 233.1.1.2:1\n', /^feeds\.txt:1: expected 4 fields .* got 3/],
    ['\n\ncash 233.1.1.1:1 233.1.1.2:1 optiq extra\n', /^feeds\.txt:3: expected 4 fields/],
    ['ca$h 233.1.1.1:1 233.1.1.2:1 optiq\n', /^feeds\.txt:1: channel name "ca\$h"/],
    ['a 233.1.1.1:1 233.1.1.2:1 optiq\na 233.1.1.3:1 233.1.1.4:1 optiq\n', /^feeds\.txt:2: channel a is already defined on line 1/],
    ['a 233.1.1.1:1 233.1.1.2:1 itch\n', /^feeds\.txt:1: format "itch": expected optiq or moldudp64/],
    ['a 233.1.1.1:1 10.0.0.1:1 optiq\n', /^feeds\.txt:1 line B: 10\.0\.0\.1 is a unicast address/],
    ['a 233.1.1.1 233.1.1.2:1 optiq\n', /^feeds\.txt:1 line A: expected GROUP:PORT/],
    ['a 233.1.1.1:1 233.1.1.2:1 optiq\nb 233.1.1.1:1 233.1.1.3:1 optiq\n', /233\.1\.1\.1:1 on line A belongs to both a and b/],
  ]
  for (const [text, message] of bad) t.match(thrown(() => parseFeeds(text, 'feeds.txt')).message, message, JSON.stringify(text))
})
