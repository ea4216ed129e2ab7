// fix-tcp's native calls (fix_xdp.c, fix_reflex.c, tcp_conn.c) report through libkbx's one error channel: a
// failing call surfaces the operation, errno and particulars C recorded, read by @kbx/ffi's nativeError.
import t from 'tap'
import { thrown } from '@kbx/errors/testing'
import { SystemError, XskError, errnoOf } from '@kbx/errors'
import { nativeError } from '@kbx/ffi'
import { libkbxFixXdp } from './native.js'
import type { KbxFixXdpPtr } from './native.js'
import { FixReflex } from './reflex.js'
import { UserTcp } from './tcp.js'


const template = {
  beginString: 'FIX.4.4',
  senderCompId: 'CLIENT1',
  targetCompId: 'EXCH',
  msgType: 'D',
  pre: Buffer.from('55=KBX\x0154=1\x01', 'latin1'),
  timeTag: 60,
  post: Buffer.from('40=2\x01', 'latin1'),
}

t.test('the AF_XDP loop without a usable socket: create names its operation', async (t) => {
  const tcp = { local_mac: [2, 0, 0, 0, 0, 1], remote_mac: [2, 0, 0, 0, 0, 2], local_ip: 1, remote_ip: 2, local_port: 1, remote_port: 2, isn: 0, mss: 0, ecn: 0, rcv_buf: 0, snd_buf: 0, rto_min_us: 0, drop_tx_nth: 0, keepalive_s: 0 }
  const out: [KbxFixXdpPtr | null] = [null]
  const rc = libkbxFixXdp().kbx_fix_xdp_create(0, { tcp, busy_poll: 0 }, out)
  t.equal(rc, -errnoOf('EINVAL'))
  t.equal(out[0], null)
  const err = nativeError(rc, 'fallback', { type: XskError })
  t.match(err, { op: 'create fix-tcp AF_XDP connection', code: 'EINVAL' })
  t.match(err.message, /needs an open AF_XDP socket with RX and TX rings/)
})

t.test('the reflex refuses a template: operation, errno and what is too long', async (t) => {
  const err = thrown(() => new FixReflex({ ...template, senderCompId: 'S'.repeat(64) }))
  t.type(err, SystemError)
  t.match(err, { op: 'configure the FIX reflex', code: 'EINVAL', hint: /up to 63 bytes/ })
  t.match((err as SystemError).message, /^configure the FIX reflex failed: EINVAL \(BeginString, CompIDs and MsgType must be 1\.\.63 bytes/)
  const header = thrown(() => new FixReflex({ ...template, header: Buffer.alloc(300, 0x41) }))
  t.match(header, { op: 'set the FIX reflex header', code: 'EINVAL', message: /300 bytes: at most 256/ })
})

t.test('the userspace TCP: a second connect and a write to a closed connection', async (t) => {
  const tcp = UserTcp.create({ local: { mac: '02:00:00:00:00:01', ip: '10.9.0.1', port: 40000 }, remote: { mac: '02:00:00:00:00:02', ip: '10.9.0.2', port: 9878 }, isn: 1 })
  t.teardown(() => tcp.close())
  t.throws(() => tcp.write(Buffer.from('x')), { op: 'write to TCP', code: 'ENOTCONN', message: /not open for sending/ })
  tcp.connect(1n)
  t.throws(() => tcp.connect(2n), { op: 'connect TCP', code: 'EISCONN', message: /used before/ })
})
