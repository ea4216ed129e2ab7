// ab-arbitrate's options against the native limits: a value libkbx or the XDP program would refuse is a
// usage error (exit 2) before anything is attached; the limits themselves are accepted end to end.
import t from 'tap'
import { xdpAttachmentOf } from '@kbx/bpf'
import { runTool } from '@kbx/cli'
import { withTestNet } from '@kbx/testbed'
import { arbitrateOptions, buildArbitrateCommand, runArbitrate } from './arbitrate.js'
import { abLimits } from './native.js'

function arbitrate(argv: string[], events: string[] = []): Promise<number> {
  return runTool({
    tool: 'ab-arbitrate',
    privileges: true,
    options: arbitrateOptions(),
    build: buildArbitrateCommand,
    run: runArbitrate,
    exit: false,
    argv: [...argv, '--log-level', 'error'],
    jsonOut: { write: (line: string) => events.push(line) },
  })
}

t.test('values the native side refuses: exit 2, nothing attached', async (t) => {
  const net = withTestNet(t)
  const ns = net.addNamespace()
  const a = net.addVethPair({ b: { netns: ns } }).a.name
  const b = net.addVethPair({ b: { netns: ns } }).a.name
  const limits = abLimits()
  const refused: string[][] = [
    ['--window', String(limits.min_window / 2)], // the issue's `--window 32`: ab_rx.c's bitmap needs 64
    ['--window', String(limits.max_window * 2)],
    ['--window', String(limits.min_window + 1)],
    ['--max-streams', '0'],
    ['--max-streams', String(limits.max_streams + 1)],
    ['--reset-distance', String(2 * limits.default_window - 1)],
    ['--reset-distance', String(limits.max_reset_distance + 1n)],
    ['--window', String(limits.min_window), '--reset-distance', String(2 * limits.min_window - 1)],
    ['--skew-sample', '3'],
    ['--skew-sample', String(limits.max_skew_sample * 2)],
    ['--rerequest', '10.0.1.1:9000'], // MoldUDP64 requests for an optiq feed
    ['--format', 'moldudp64', '--rerequest', '10.0.1.1'],
    ['--format', 'moldudp64', '--rerequest', '10.0.1.1:9000', '--rerequest-max', '0'],
    ['--format', 'moldudp64', '--rerequest', '10.0.1.1:9000', '--rerequest-max', '65535'],
    ['--order', 'sideways'],
    ['--order', 'sequence', '--hold-us', '0'],
    ['--order', 'sequence', '--hold-max', String(2 ** 24 + 1)],
  ]
  for (const args of refused) {
    const events: string[] = []
    t.equal(await arbitrate([a, b, ...args, '--duration', '1'], events), 2, `${args.join(' ')}: usage error`)
    t.notOk(events.some((e) => e.includes('"event":"start"')), `${args.join(' ')}: never started`)
    t.same([xdpAttachmentOf(a).programs, xdpAttachmentOf(b).programs], [[], []], `${args.join(' ')}: nothing attached`)
  }
})

t.test('the limits themselves are accepted by the CLI, the XDP program and the receive loop', async (t) => {
  const net = withTestNet(t)
  const ns = net.addNamespace()
  const a = net.addVethPair({ b: { netns: ns } }).a.name
  const b = net.addVethPair({ b: { netns: ns } }).a.name
  const limits = abLimits()
  const events: string[] = []
  const args = ['--window', String(limits.min_window), '--reset-distance', String(2 * limits.min_window), '--max-streams', '1', '--skew-sample', String(limits.max_skew_sample)]
  t.equal(await arbitrate([a, b, ...args, '--duration', '0.5', '--mode', 'skb'], events), 0, args.join(' '))
  const start = events.map((e) => JSON.parse(e) as { event: string; data: Record<string, unknown> }).find((e) => e.event === 'start')
  t.match(start?.data, { window: limits.min_window, maxStreams: 1, resetDistance: String(2 * limits.min_window), skewSample: limits.max_skew_sample })
  t.same([xdpAttachmentOf(a).programs, xdpAttachmentOf(b).programs], [[], []], 'detached at exit')
})
