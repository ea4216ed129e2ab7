import t from 'tap'
import { UsageError } from '@kbx/errors'
import { formatIPv4, formatIPv6, formatMac, isIPv4, parseIPv4, parseIPv6, parseMac, writeMacTo } from './index.js'

t.test('MAC addresses parse and format', async (t) => {
  t.same([...parseMac('02:00:5E:10:ab:ff')], [0x02, 0x00, 0x5e, 0x10, 0xab, 0xff])
  t.same([...parseMac('02-00-5e-10-ab-ff')], [0x02, 0x00, 0x5e, 0x10, 0xab, 0xff])
  t.equal(formatMac(parseMac('02:00:5E:10:AB:FF')), '02:00:5e:10:ab:ff')
  t.equal(formatMac(Buffer.from([9, 9, 1, 2, 3, 4, 5, 6]), 2), '01:02:03:04:05:06')
  const dst = new Uint8Array(10)
  writeMacTo(dst, 3, 'aa:bb:cc:dd:ee:ff')
  t.same([...dst], [0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0])
  for (const bad of ['', '02:00:00:00:00', '02:00:00:00:00:0g', '02:00:00:00:00:001', '0200.0000.0001', '02:00:00:00:00:01 ']) {
    t.throws(() => parseMac(bad), UsageError, `rejects ${JSON.stringify(bad)}`)
  }
  t.throws(() => formatMac(new Uint8Array(5)), RangeError)
})

t.test('IPv4 addresses parse to host-order u32 and format back', async (t) => {
  t.equal(parseIPv4('10.0.0.1'), 0x0a000001)
  t.equal(parseIPv4('255.255.255.255'), 0xffffffff)
  t.equal(parseIPv4('0.0.0.0'), 0)
  t.equal(formatIPv4(0xc0a800c7), '192.168.0.199')
  t.equal(formatIPv4(parseIPv4('203.0.113.254')), '203.0.113.254')
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '01.2.3.4', '1.2.3.4 ', 'a.b.c.d', '1.2.3.-4']) {
    t.throws(() => parseIPv4(bad), UsageError, `rejects ${JSON.stringify(bad)}`)
    t.notOk(isIPv4(bad))
  }
  t.ok(isIPv4('1.2.3.4'))
})

t.test('IPv6 addresses parse and format (RFC 5952)', async (t) => {
  t.equal(parseIPv6('fd00::1').toString('hex'), 'fd000000000000000000000000000001')
  t.equal(parseIPv6('::').toString('hex'), '0'.repeat(32))
  t.equal(parseIPv6('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001')
  t.equal(parseIPv6('2001:db8:0:0:1:0:0:1').toString('hex'), '20010db8000000000001000000000001')
  t.equal(formatIPv6(parseIPv6('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1')
  t.equal(formatIPv6(parseIPv6('2001:0db8:0000:0000:0000:0000:0000:0001')), '2001:db8::1')
  t.equal(formatIPv6(parseIPv6('fe80::')), 'fe80::')
  t.equal(formatIPv6(parseIPv6('1:0:2:3:4:5:6:7')), '1:0:2:3:4:5:6:7')
  for (const bad of ['', ':', '1::2::3', '12345::', 'fd00::1%eth0', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1']) {
    t.throws(() => parseIPv6(bad), UsageError, `rejects ${JSON.stringify(bad)}`)
  }
})
