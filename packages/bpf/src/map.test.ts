import t from 'tap'
import { existsSync, rmSync } from 'node:fs'
import { BpfError, UsageError } from '@kbx/errors'
import { bpfObjectPath, encodeXskSlotKey } from '@kbx/ffi'
import { BpfMap, BpfObject, ensureBpffs, readCounters } from './index.js'
import { throwsErrno } from './testing/assert.js'
import { uniqueName } from './testing/netns.js'
import { mkdirSync } from 'node:fs'

function loaded(name: string): BpfObject {
  const obj = BpfObject.open(bpfObjectPath(name))
  t.teardown(() => obj.close())
  obj.load()
  return obj
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

t.test('hash map: update, lookup, delete, iterate, flags', async (t) => {
  const slots = loaded('xdp_xsk_redirect').map('xsk_slots')
  t.equal(slots.type, 'hash')
  t.equal(slots.perCpu, false)
  t.equal(slots.lookup(encodeXskSlotKey(1, 0)), undefined, 'missing key')
  slots.update(encodeXskSlotKey(1, 0), u32(7))
  t.same(slots.lookup(encodeXskSlotKey(1, 0)), u32(7))
  slots.update(encodeXskSlotKey(1, 0), u32(8), 'exist')
  t.same(slots.lookup(encodeXskSlotKey(1, 0)), u32(8), 'exist replaces')
  throwsErrno(t, () => slots.update(encodeXskSlotKey(1, 0), u32(9), 'noexist'), 'EEXIST', 'noexist on a present key', BpfError)
  throwsErrno(t, () => slots.update(encodeXskSlotKey(2, 0), u32(9), 'exist'), 'ENOENT', 'exist on a missing key', BpfError)
  slots.update(encodeXskSlotKey(2, 0), u32(9), 'noexist')
  slots.update(encodeXskSlotKey(2, 1), u32(10))
  const entries = [...slots.entries()].map(([k, v]) => `${k.readUInt32LE(0)}:${k.readUInt32LE(4)}=${v.readUInt32LE(0)}`).sort()
  t.same(entries, ['1:0=8', '2:0=9', '2:1=10'])
  t.equal([...slots.keys()].length, 3)
  t.equal(slots.delete(encodeXskSlotKey(2, 0)), true)
  t.equal(slots.delete(encodeXskSlotKey(2, 0)), false, 'deleting a missing key')
  t.equal([...slots.keys()].length, 2)
  t.throws(() => slots.lookup(Buffer.alloc(4)), UsageError, 'wrong key size')
  t.throws(() => slots.update(encodeXskSlotKey(3, 0), Buffer.alloc(8)), UsageError, 'wrong value size')
  for (let i = 0; i < 62; i++) slots.update(encodeXskSlotKey(100, i), u32(i))
  t.equal([...slots.keys()].length, 64, 'full')
  throwsErrno(t, () => slots.update(encodeXskSlotKey(101, 0), u32(0)), 'E2BIG', 'no room past max_entries', BpfError)
  t.throws(() => slots.lookupPerCpu(encodeXskSlotKey(1, 0)), UsageError, 'not per-CPU')
})

t.test('per-CPU array: per-CPU values, sums, writes', async (t) => {
  const obj = loaded('xdp_pass')
  const stats = obj.map('stats')
  t.equal(stats.perCpu, true)
  t.throws(() => stats.lookup(u32(0)), UsageError, 'lookup() refuses per-CPU maps')
  const value = Buffer.alloc(16)
  value.writeBigUInt64LE(5n, 0)
  value.writeBigUInt64LE(500n, 8)
  stats.update(u32(0), value)
  const perCpu = stats.lookupPerCpu(u32(0)) ?? []
  t.ok(perCpu.length >= 1)
  t.ok(perCpu.every((v) => v.readBigUInt64LE(0) === 5n), 'one value is written to every CPU')
  t.same(stats.sumPerCpuU64(u32(0)), [5n * BigInt(perCpu.length), 500n * BigInt(perCpu.length)])
  t.same(readCounters(stats), { packets: 5n * BigInt(perCpu.length), bytes: 500n * BigInt(perCpu.length) })
  throwsErrno(t, () => stats.update(u32(1), value), 'E2BIG', 'index past the array', BpfError)
  throwsErrno(t, () => stats.delete(u32(0)), 'EINVAL', 'arrays cannot delete', BpfError)
  t.same([...stats.keys()].map((k) => k.readUInt32LE(0)), [0], 'array keys')
})

t.test('pin, fromPin, unpin', async (t) => {
  ensureBpffs()
  const dir = `/sys/fs/bpf/kbx-test-${uniqueName('map')}`
  mkdirSync(dir)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const obj = loaded('xdp_xsk_redirect')
  const slots = obj.map('xsk_slots')
  slots.update(encodeXskSlotKey(4, 2), u32(42))
  const path = `${dir}/xsk_slots`
  slots.pin(path)
  throwsErrno(t, () => slots.pin(path), 'EEXIST', 'pinning twice', BpfError)
  const pinned = BpfMap.fromPin(path)
  t.teardown(() => pinned.close())
  t.equal(pinned.info().id, slots.info().id, 'same kernel map')
  t.equal(pinned.name, 'xsk_slots')
  t.equal(pinned.keySize, 8)
  t.same(pinned.lookup(encodeXskSlotKey(4, 2)), u32(42), 'sees entries written through the object')
  pinned.update(encodeXskSlotKey(4, 3), u32(43))
  t.same(slots.lookup(encodeXskSlotKey(4, 3)), u32(43), 'and the other way round')
  t.same(pinned.valueFields(), [], 'a u32 value has no fields')
  obj.close()
  t.same(pinned.lookup(encodeXskSlotKey(4, 2)), u32(42), 'the pin keeps the map alive after the object closed')
  BpfMap.unpin(path)
  t.notOk(existsSync(path), 'pin removed')
  throwsErrno(t, () => BpfMap.fromPin(path), 'ENOENT', 'gone after unpin', BpfError)
  throwsErrno(t, () => BpfMap.unpin(path), 'ENOENT', 'unpin twice')
})

t.test('fromId and readCounters of a pinned stats map', async (t) => {
  const obj = loaded('xdp_pass')
  obj.program().testRun({ data: Buffer.alloc(64), repeat: 3 })
  const byId = BpfMap.fromId(obj.map('stats').info().id)
  t.teardown(() => byId.close())
  t.same(readCounters(byId), { packets: 3n, bytes: 192n }, 'counter names from the kernel BTF')
})
