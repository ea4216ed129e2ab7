import t from 'tap'
import { checksumPartial, internetChecksum, ipv4PseudoHeaderSum, parseIPv4 } from './index.js'

t.test('RFC 1071 §3 example', async (t) => {
  const data = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])
  t.equal(checksumPartial(data, 0, 8), 0xddf2)
  t.equal(internetChecksum(data, 0, 8), 0x220d)
  // A partial sum carried in as `initial` gives the same result as one pass.
  t.equal(internetChecksum(data, 4, 8, checksumPartial(data, 0, 4)), 0x220d)
})

t.test('odd lengths pad the last byte as a high byte', async (t) => {
  const data = Buffer.from([0x12, 0x34, 0x56])
  t.equal(checksumPartial(data, 0, 3), 0x1234 + 0x5600)
  t.equal(internetChecksum(data, 0, 3), ~(0x1234 + 0x5600) & 0xffff)
})

t.test('a classic IPv4 header (192.168.0.1 → 192.168.0.199) has checksum 0xb861', async (t) => {
  const header = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex')
  t.equal(internetChecksum(header, 0, 20), 0xb861)
  header.writeUInt16BE(0xb861, 10)
  t.equal(internetChecksum(header, 0, 20), 0, 'a header holding its checksum sums to zero')
})

t.test('carries fold around (all-ones data)', async (t) => {
  const data = Buffer.alloc(4000, 0xff)
  t.equal(checksumPartial(data, 0, data.length), 0xffff)
  t.equal(internetChecksum(data, 0, data.length), 0)
})

t.test('IPv4 pseudo-header sum', async (t) => {
  // 10.0.0.1 + 10.0.0.2 + 17 + 13 = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 0x11 + 0x0d
  t.equal(ipv4PseudoHeaderSum(parseIPv4('10.0.0.1'), parseIPv4('10.0.0.2'), 17, 13), 0x1400 + 3 + 17 + 13)
  t.equal(ipv4PseudoHeaderSum(0xffffffff, 0xffffffff, 0xff, 0xffff), checksumPartial(Buffer.from('ffffffffffffffff00ffffff', 'hex'), 0, 12))
})
