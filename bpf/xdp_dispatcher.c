// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The template of kbx's XDP dispatcher (xdp-load load IFACE A.o B.o …): one SEC("xdp") program that calls
 * each component in priority order and returns the first verdict other than XDP_PASS.
 *
 * It is not loaded as it is. The Makefile builds one copy per slot count (build/kbx_dispatcher_N.o, no
 * DWARF, no .BTF.ext) and xdp-load, at load time, renames each slot's placeholder symbol to a component's
 * entry function (in place, in .strtab and in the .BTF strings: the placeholder is longer than any name it
 * takes, the rest is padded with NULs), turns each component's program section into .text (so it becomes
 * a global subprogram) and links everything with libbpf's static linker. The component runs as a BPF-to-BPF
 * call: its maps, helpers and bpf_redirect_map work as they did; its XDP_PASS lets the next one run.
 * packages/xdp-load/src/dispatcher.ts does all that; README.md (xdp-load) says why it is done this way.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef KBX_DISPATCH_SLOTS
#error "build with -DKBX_DISPATCH_SLOTS=N (bpf/Makefile does)"
#endif

/* Must match slotPlaceholder() in packages/xdp-load/src/dispatcher.ts. */
#define KBX_SLOT(n) kbx_dispatch_slot_##n##_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
#define KBX_DECLARE(n) extern int KBX_SLOT(n)(struct xdp_md *ctx);
#define KBX_RUN(n)                                                                                 \
	verdict = KBX_SLOT(n)(ctx);                                                                \
	if (verdict != XDP_PASS)                                                                   \
		return verdict;

KBX_DECLARE(0)
#if KBX_DISPATCH_SLOTS > 1
KBX_DECLARE(1)
#endif
#if KBX_DISPATCH_SLOTS > 2
KBX_DECLARE(2)
#endif
#if KBX_DISPATCH_SLOTS > 3
KBX_DECLARE(3)
#endif
#if KBX_DISPATCH_SLOTS > 4
KBX_DECLARE(4)
#endif
#if KBX_DISPATCH_SLOTS > 5
KBX_DECLARE(5)
#endif
#if KBX_DISPATCH_SLOTS > 6
KBX_DECLARE(6)
#endif
#if KBX_DISPATCH_SLOTS > 7
KBX_DECLARE(7)
#endif
#if KBX_DISPATCH_SLOTS > 8
#error "at most 8 slots"
#endif

SEC("xdp")
int kbx_dispatcher(struct xdp_md *ctx)
{
	int verdict;

	KBX_RUN(0)
#if KBX_DISPATCH_SLOTS > 1
	KBX_RUN(1)
#endif
#if KBX_DISPATCH_SLOTS > 2
	KBX_RUN(2)
#endif
#if KBX_DISPATCH_SLOTS > 3
	KBX_RUN(3)
#endif
#if KBX_DISPATCH_SLOTS > 4
	KBX_RUN(4)
#endif
#if KBX_DISPATCH_SLOTS > 5
	KBX_RUN(5)
#endif
#if KBX_DISPATCH_SLOTS > 6
	KBX_RUN(6)
#endif
#if KBX_DISPATCH_SLOTS > 7
	KBX_RUN(7)
#endif
	return XDP_PASS;
}

/* Replaced at link time by the license every component agrees on (dispatcher.ts combinedLicense). */
char LICENSE[] SEC("license") = "GPL";
