import t from 'tap'
import { BpfError, KbxError, SystemError, UsageError, errnoName, hasErrno } from './index.js'

t.test('errno names round-trip', async (t) => {
  t.equal(errnoName(1), 'EPERM')
  t.equal(errnoName(-16), 'EBUSY')
  t.match(errnoName(99999), /^errno 99999$/)
})

t.test('SystemError carries operation, errno and a hint', async (t) => {
  const err = new SystemError('bpf_link_create', -1)
  t.ok(err instanceof KbxError)
  t.equal(err.op, 'bpf_link_create')
  t.equal(err.errno, 1)
  t.equal(err.code, 'EPERM')
  t.match(err.hint, /root/)
  t.match(err.message, /bpf_link_create failed: EPERM/)
  t.equal(err.exitCode, 1)
  t.ok(hasErrno(err, 'EPERM'))
  t.notOk(hasErrno(err, 'EBUSY'))
})

t.test('UsageError exits 2 and serialises', async (t) => {
  const err = new UsageError('unknown interface "nope0"', { hint: 'see `ip link`' })
  t.equal(err.exitCode, 2)
  t.same(err.toJSON(), { type: 'UsageError', message: 'unknown interface "nope0"', op: 'parse arguments', hint: 'see `ip link`' })
})

t.test('BpfError keeps the verifier log', async (t) => {
  const err = new BpfError('bpf_object__load', 13, { verifierLog: 'R1 invalid mem access' })
  t.equal(err.code, 'EACCES')
  t.equal(err.toJSON()['verifierLog'], 'R1 invalid mem access')
})
