/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one error channel of libkbx: every native module (the AF_XDP core, ab, quic, fix) that fails a call
 * records what it was doing, the errno it returns and the particulars in words, per thread, and returns the
 * negative errno as before. TypeScript reads the record with kbx_error_take() right after a call returned a
 * negative errno (@kbx/ffi nativeError builds the typed error from it) and trusts it only when its errno is
 * the one returned.
 *
 *   return kbx_fail(-EINVAL, "create UMEM", "frame size %u is not a power of two", size);
 *
 * The batch path records only on failure (a formatted string then), never on success.
 */
#ifndef KBX_ERROR_H
#define KBX_ERROR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KBX_ERROR_OPERATION_MAX 64
#define KBX_ERROR_MESSAGE_MAX 448

struct kbx_error {
	int32_t errnum;                          /* positive errno; 0 when nothing is recorded */
	char operation[KBX_ERROR_OPERATION_MAX]; /* what was being done, a fixed phrase: "bind AF_XDP socket" */
	char message[KBX_ERROR_MESSAGE_MAX];     /* the particulars, in words: "veth0 queue 0: copy mode, 3 attempts" */
};

/*
 * Records a failure of this thread (replacing any earlier one) and returns err unchanged, so a call can
 * `return kbx_fail(...)`. err: the errno, negative (as returned) or positive. message: printf format, or NULL.
 */
int kbx_fail(int err, const char *operation, const char *message, ...) __attribute__((format(printf, 3, 4)));
/* Copies this thread's record into *out and forgets it; returns its errno (0: nothing recorded). */
int kbx_error_take(struct kbx_error *out);

#ifdef __cplusplus
}
#endif

#endif
