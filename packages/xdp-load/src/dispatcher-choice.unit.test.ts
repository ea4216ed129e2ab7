import t from 'tap'
import { LIBXDP_HINT, bareDispatcherAsAuto, chooseDispatcher } from './dispatcher-choice.js'
import type { Carried, ChoiceInput, DispatcherKind, ProbeVerdict } from './dispatcher-choice.js'

const works: ProbeVerdict = { ok: true }
const refused: ProbeVerdict = {
  ok: false,
  op: 'attach two programs with libxdp (xdp_program__attach_multi)',
  errno: 95,
  code: 'EOPNOTSUPP',
  reason: 'Compatibility check for dispatcher program failed: Operation not permitted',
}

/** The choice with a faked probe that counts its calls. */
function choose(asked: DispatcherKind | undefined, carried: Carried, probe: ProbeVerdict, throughDispatcher = true) {
  let probes = 0
  const input: ChoiceInput = { iface: 'eth1', asked, throughDispatcher, carried, probe: () => (probes++, probe) }
  return { choice: chooseDispatcher(input), probes }
}

t.test('auto on a bare interface: libxdp when the probe works, else kbx with the reason', async (t) => {
  t.same(choose('auto', 'nothing', works), { choice: { use: 'libxdp' }, probes: 1 })
  t.same(choose(undefined, 'nothing', works).choice, { use: 'libxdp' }, 'several objects without --dispatcher: auto')
  const fallback = choose('auto', 'nothing', refused)
  t.equal(fallback.probes, 1)
  t.ok('use' in fallback.choice && fallback.choice.use === 'kbx')
  const why = 'use' in fallback.choice && fallback.choice.use === 'kbx' ? fallback.choice.whyNotLibxdp : undefined
  t.match(why, /libxdp's dispatcher not used on eth1/)
  t.match(why, /EOPNOTSUPP \(errno 95\)/, 'the errno')
  t.match(why, /xdp_program__attach_multi/, 'the step')
  t.match(why, /libxdp: Compatibility check for dispatcher program failed: Operation not permitted/, "libxdp's reason")
})

t.test('kbx: never probes; libxdp: only libxdp, a clear error when it fails', async (t) => {
  t.same(choose('kbx', 'nothing', works), { choice: { use: 'kbx' }, probes: 0 })
  t.same(choose('libxdp', 'nothing', works), { choice: { use: 'libxdp' }, probes: 1 })
  const { choice } = choose('libxdp', 'nothing', refused)
  t.ok('refuse' in choice)
  if (!('refuse' in choice)) return
  t.equal(choice.refuse.errno, 95)
  t.equal(choice.refuse.exitCode, 1)
  t.equal(choice.refuse.hint, LIBXDP_HINT)
  t.match(choice.refuse.message, /Compatibility check for dispatcher program failed/)
  const noReason = choose('libxdp', 'nothing', { ok: false })
  t.ok('refuse' in noReason.choice && /libxdp gave no reason/.test(noReason.choice.refuse.message), 'a failure without details still says so')
})

t.test('an interface that carries a dispatcher keeps it', async (t) => {
  t.same(choose('auto', 'kbx-dispatcher', works), { choice: { use: 'kbx' }, probes: 0 }, "auto adds to kbx's")
  t.same(choose(undefined, 'kbx-dispatcher', works, false), { choice: { use: 'kbx' }, probes: 0 }, 'one object joins the chain')
  t.same(choose('auto', 'libxdp-dispatcher', refused), { choice: { use: 'libxdp' }, probes: 0 }, "auto adds to libxdp's, no probe")
  t.same(choose(undefined, 'libxdp-dispatcher', refused, false), { choice: { use: 'libxdp' }, probes: 0 })
  const kbxOnLibxdp = choose('kbx', 'libxdp-dispatcher', works)
  t.ok('refuse' in kbxOnLibxdp.choice, "kbx's never goes on top of libxdp's")
  if ('refuse' in kbxOnLibxdp.choice) {
    t.match(kbxOnLibxdp.choice.refuse.message, /carries libxdp's dispatcher \(xdp_dispatcher/)
    t.match(kbxOnLibxdp.choice.refuse.hint, /xdp-loader unload eth1 --all/)
  }
  const libxdpOnKbx = choose('libxdp', 'kbx-dispatcher', works)
  t.ok('refuse' in libxdpOnKbx.choice && /carries kbx's dispatcher/.test(libxdpOnKbx.choice.refuse.message))
  t.equal(libxdpOnKbx.probes, 0)
})

t.test('one object without --dispatcher: attached directly, nothing probed', async (t) => {
  t.same(choose(undefined, 'nothing', works, false), { choice: { use: 'direct' }, probes: 0 })
  t.same(choose(undefined, 'other', works, false), { choice: { use: 'direct' }, probes: 0 }, 'the direct load refuses a foreign program itself')
})

t.test('a foreign program: kbx refuses with its details; libxdp refuses up front', async (t) => {
  t.same(choose('auto', 'other', works), { choice: { use: 'kbx' }, probes: 0 })
  const { choice, probes } = choose('libxdp', 'other', works)
  t.equal(probes, 0)
  t.ok('refuse' in choice && /no dispatcher/.test(choice.refuse.message))
})

t.test('bareDispatcherAsAuto: a bare --dispatcher is auto and leaves the next word an object', async (t) => {
  t.same(bareDispatcherAsAuto(['eth1', '--dispatcher', 'other.o']), ['eth1', '--dispatcher=auto', 'other.o'])
  t.same(bareDispatcherAsAuto(['eth1', 'a.o', '--dispatcher', '--mode', 'skb']), ['eth1', 'a.o', '--dispatcher=auto', '--mode', 'skb'])
  t.same(bareDispatcherAsAuto(['eth1', 'a.o', '--dispatcher']), ['eth1', 'a.o', '--dispatcher=auto'])
  t.same(bareDispatcherAsAuto(['eth1', 'a.o', 'b.o', '--dispatcher', 'kbx']), ['eth1', 'a.o', 'b.o', '--dispatcher', 'kbx'], 'a kind stays')
  t.same(bareDispatcherAsAuto(['eth1', 'a.o', '--dispatcher=libxdp']), ['eth1', 'a.o', '--dispatcher=libxdp'])
})
