import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BpfError, UsageError } from '@kbx/errors'
import { bpfObjectPath } from '@kbx/ffi'
import { BpfObject, mapInfoById, progInfoById } from './index.js'
import { throwsErrno } from './testing/assert.js'

const BAD_PROGRAM = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int kbx_fine(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int kbx_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	return data[100] == 1 ? XDP_DROP : XDP_PASS; /* no bounds check against data_end */
}

char LICENSE[] SEC("license") = "GPL";
`

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kbx-bpf-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('a missing object file is BpfError ENOENT with a build hint', async (t) => {
  const err = throwsErrno(t, () => BpfObject.open(bpfObjectPath('no_such_program')), 'ENOENT', 'ENOENT', BpfError)
  t.match(err?.hint, /make -C bpf/)
  t.match(err?.message, /no_such_program\.o/)
})

t.test('a file that is not a BPF object is refused by libbpf', async (t) => {
  const path = join(tempDir(), 'junk.o')
  writeFileSync(path, 'not an ELF file at all')
  const err = throwsErrno(t, () => BpfObject.open(path), 'EINVAL', 'EINVAL', BpfError)
  t.match(err?.message, /junk\.o/)
  t.match(err?.message, /format invalid/, "libbpf's reason")
})

t.test('programs by name; unknown names list the existing ones', async (t) => {
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  t.teardown(() => obj.close())
  t.same(obj.programs().map((p) => p.name), ['kbx_xsk_redirect'])
  t.equal(obj.program().name, 'kbx_xsk_redirect', 'first program without a name')
  t.equal(obj.program().section, 'xdp')
  try {
    obj.program('nope')
    t.fail('found a missing program')
  } catch (err) {
    t.ok(err instanceof UsageError, 'UsageError')
    t.match((err as UsageError).hint, /kbx_xsk_redirect/)
  }
  t.throws(() => obj.map('stats'), /load\(\) first/, 'maps need load()')
  t.throws(() => obj.program().fd, /load\(\) first/, 'fds need load()')
  obj.load()
  t.throws(() => obj.load(), /already loaded/)
  t.throws(() => obj.map('nope'), /no map "nope"/)
  obj.close()
  obj.close()
  t.throws(() => obj.program(), /closed/)
})

t.test('a verifier rejection carries the verifier log', async (t) => {
  const dir = tempDir()
  const source = join(dir, 'bad.bpf.c')
  writeFileSync(source, BAD_PROGRAM)
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', source, '-o', join(dir, 'bad.o')])
  const obj = BpfObject.open(join(dir, 'bad.o'))
  t.teardown(() => obj.close())
  t.same(obj.programs().map((p) => p.name).sort(), ['kbx_fine', 'kbx_unchecked'])
  const err = throwsErrno(t, () => obj.load(), 'EACCES', 'load fails with EACCES', BpfError)
  t.match(err?.verifierLog, /invalid access to packet/, 'the verifier message')
  t.match(err?.verifierLog, /processed \d+ insns/, 'the tail of the log')
  t.match(err?.message, /kbx_unchecked/, 'names the program')
  t.match(err?.hint, /verifier/)
  t.match(JSON.stringify(err?.toJSON()), /invalid access to packet/, 'verifierLog in the JSON form')
})

t.test('info from the kernel', async (t) => {
  const obj = BpfObject.open(bpfObjectPath('xdp_xsk_redirect'))
  t.teardown(() => obj.close())
  obj.load()
  const prog = obj.program()
  const info = prog.info()
  t.ok(info.id > 0)
  t.match(info.tag, /^[0-9a-f]{16}$/)
  t.equal(info.name, 'kbx_xsk_redirec', 'kernel names hold 15 characters')
  t.equal(info.type, 'xdp')
  t.ok(info.verifiedInsns > 0)
  const stats = obj.map('stats')
  t.ok(info.mapIds.includes(stats.info().id), 'map ids include stats')
  t.same(progInfoById(info.id), info, 'by id')
  const mapInfo = mapInfoById(stats.info().id)
  t.equal(mapInfo.name, 'stats')
  t.equal(mapInfo.type, 'percpu_array')
  t.equal(mapInfo.valueSize, 80)
  t.ok(mapInfo.btfId > 0, 'maps carry BTF')
  const gone = throwsErrno(t, () => progInfoById(0x7ffffff0), 'ENOENT', 'unknown prog id', BpfError)
  t.match(gone?.hint, /bpftool prog show/)
})
