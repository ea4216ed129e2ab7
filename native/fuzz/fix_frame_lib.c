// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libkbx_fixframe.so: the C FIX framer's message trace for the differential target (fuzz/targets/fix-codec.ts). */
#include "fix_frame_trace.h"

/* One call per fuzz input (control path of a test, not a data path). Returns messages framed, or -1. */
int64_t kbx_fuzz_fix_frame(const uint8_t *data, uint32_t len, const uint32_t *cuts, uint32_t ncuts,
			   struct fuzz_fix_message *out, uint32_t cap)
{
	return fuzz_fix_frame_stream(data, len, cuts, ncuts, out, cap);
}
