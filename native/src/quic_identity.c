// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Ed25519 identities and self-signed certificates (GnuTLS), plus helpers shared by the QUIC engine. */
#define _GNU_SOURCE
#define KBX_QUIC_INTERNAL
#include "kbx_quic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>

uint64_t kbx_quic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void kbx_quic_rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx)
{
	(void)rand_ctx;
	(void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
}

/* TLS 1.3 only, X25519 first (Agave's key exchange), Ed25519 signatures allowed for the client certificate. */
const char kbx_quic_tls_priority[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+SIGN-EDDSA-ED25519:%DISABLE_TLS13_COMPAT_MODE";

int kbx_quic_alpn_init(struct kbx_quic_alpn *out, const char *alpn)
{
	if (!alpn || !*alpn || strlen(alpn) > KBX_QUIC_MAX_ALPN_LEN)
		return kbx_fail(-EINVAL, "set ALPN", "ALPN must be 1..%u bytes", KBX_QUIC_MAX_ALPN_LEN);
	snprintf(out->name, sizeof(out->name), "%s", alpn);
	out->datum.data = (unsigned char *)out->name;
	out->datum.size = (unsigned)strlen(out->name);
	return 0;
}

int kbx_quic_tls_session_configure(gnutls_session_t session, gnutls_certificate_credentials_t cred,
				   const struct kbx_quic_alpn *alpn)
{
	int rv = gnutls_priority_set_direct(session, kbx_quic_tls_priority, NULL);

	if (rv == 0)
		rv = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred);
	if (rv == 0)
		rv = gnutls_alpn_set_protocols(session, &alpn->datum, 1, GNUTLS_ALPN_MANDATORY);
	return rv;
}

void kbx_quic_common_callbacks(ngtcp2_callbacks *cb)
{
	cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
	cb->encrypt = ngtcp2_crypto_encrypt_cb;
	cb->decrypt = ngtcp2_crypto_decrypt_cb;
	cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
	cb->rand = kbx_quic_rand_cb;
	cb->update_key = ngtcp2_crypto_update_key_cb;
	cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
	cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
	cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
	cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

void kbx_quic_recv_batch_prepare(struct mmsghdr *msgs, struct iovec *iovs, uint8_t (*bufs)[KBX_QUIC_RX_BUFFER],
				 struct sockaddr_in *addrs, unsigned count)
{
	unsigned i;

	for (i = 0; i < count; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = KBX_QUIC_RX_BUFFER;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		if (addrs) {
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		}
	}
}

static int check_key_pair(gnutls_x509_privkey_t key)
{
	gnutls_privkey_t priv = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t sig = { NULL, 0 };
	static const char message[] = "kbx identity check";
	gnutls_datum_t data = { (unsigned char *)message, sizeof(message) - 1 };
	int rv;

	rv = gnutls_privkey_init(&priv);
	if (rv == 0)
		rv = gnutls_privkey_import_x509(priv, key, 0);
	if (rv == 0)
		rv = gnutls_pubkey_init(&pub);
	if (rv == 0)
		rv = gnutls_pubkey_import_privkey(pub, priv, 0, 0);
	if (rv == 0)
		rv = gnutls_privkey_sign_data2(priv, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &sig);
	if (rv == 0)
		rv = gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_EDDSA_ED25519, 0, &data, &sig);
	gnutls_free(sig.data);
	if (pub)
		gnutls_pubkey_deinit(pub);
	if (priv)
		gnutls_privkey_deinit(priv);
	return rv;
}

int kbx_quic_identity_create(const uint8_t *keypair, struct kbx_quic_identity **out)
{
	struct kbx_quic_identity *id = calloc(1, sizeof(*id));
	gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 }, k = { NULL, 0 };
	gnutls_ecc_curve_t curve;
	uint8_t serial[8];
	time_t now = time(NULL);
	int rv;

	*out = NULL;
	if (!id)
		return kbx_fail(-ENOMEM, "create Ed25519 identity", "allocate");
	rv = gnutls_x509_privkey_init(&id->key);
	if (rv < 0)
		goto gnutls_failed;
	if (keypair) {
		gnutls_datum_t pub = { (unsigned char *)keypair + 32, 32 };
		gnutls_datum_t seed = { (unsigned char *)keypair, 32 };

		rv = gnutls_x509_privkey_import_ecc_raw(id->key, GNUTLS_ECC_CURVE_ED25519, &pub, NULL, &seed);
		if (rv < 0)
			goto gnutls_failed;
		if (check_key_pair(id->key) < 0) {
			kbx_quic_identity_destroy(id);
			return kbx_fail(-EINVAL, "create Ed25519 identity", "keypair: the public key (bytes 32..63) does not belong to the "
						      "secret key (bytes 0..31)");
		}
	} else {
		rv = gnutls_x509_privkey_generate(id->key, GNUTLS_PK_EDDSA_ED25519, 0, 0);
		if (rv < 0)
			goto gnutls_failed;
	}
	rv = gnutls_x509_privkey_export_ecc_raw(id->key, &curve, &x, &y, &k);
	if (rv < 0)
		goto gnutls_failed;
	if (x.size != 32) {
		gnutls_free(x.data);
		gnutls_free(y.data);
		gnutls_free(k.data);
		kbx_quic_identity_destroy(id);
		return kbx_fail(-EPROTO, "create Ed25519 identity", "Ed25519 public key has %u bytes", x.size);
	}
	memcpy(id->public_key, x.data, 32);
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_free(k.data);

	rv = gnutls_x509_crt_init(&id->crt);
	if (rv == 0)
		rv = gnutls_x509_crt_set_version(id->crt, 3);
	if (rv == 0) {
		gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
		serial[0] &= 0x7f;
		rv = gnutls_x509_crt_set_serial(id->crt, serial, sizeof(serial));
	}
	if (rv == 0)
		rv = gnutls_x509_crt_set_activation_time(id->crt, now - 86400);
	if (rv == 0)
		rv = gnutls_x509_crt_set_expiration_time(id->crt, now + 10 * 365 * 86400L);
	if (rv == 0)
		rv = gnutls_x509_crt_set_dn_by_oid(id->crt, GNUTLS_OID_X520_COMMON_NAME, 0, "Solana node", 11);
	if (rv == 0)
		rv = gnutls_x509_crt_set_subject_alt_name(id->crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
							  GNUTLS_FSAN_SET);
	if (rv == 0)
		rv = gnutls_x509_crt_set_key(id->crt, id->key);
	if (rv == 0)
		rv = gnutls_x509_crt_sign2(id->crt, id->crt, id->key, GNUTLS_DIG_SHA512, 0);
	if (rv < 0)
		goto gnutls_failed;
	*out = id;
	return 0;

gnutls_failed:
	kbx_quic_identity_destroy(id);
	return kbx_fail(-EPROTO, "create Ed25519 identity", "%s", gnutls_strerror(rv));
}

void kbx_quic_identity_destroy(struct kbx_quic_identity *id)
{
	if (!id)
		return;
	if (id->crt)
		gnutls_x509_crt_deinit(id->crt);
	if (id->key)
		gnutls_x509_privkey_deinit(id->key);
	free(id);
}

void kbx_quic_identity_public_key(const struct kbx_quic_identity *id, uint8_t *out32)
{
	memcpy(out32, id->public_key, 32);
}

int kbx_quic_identity_certificate_der(const struct kbx_quic_identity *id, uint8_t *buf, uint32_t cap)
{
	size_t size = cap;
	int rv = gnutls_x509_crt_export(id->crt, GNUTLS_X509_FMT_DER, buf, &size);

	if (rv == GNUTLS_E_SHORT_MEMORY_BUFFER)
		return kbx_fail(-ENOSPC, "export certificate", "certificate needs %zu bytes", size);
	if (rv < 0)
		return kbx_fail(-EPROTO, "export certificate", "%s", gnutls_strerror(rv));
	return (int)size;
}

static int write_datum(const char *path, const gnutls_datum_t *d)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return kbx_fail(-errno, "write PEM", "open %s", path);
	ok = fwrite(d->data, 1, d->size, f) == d->size;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : kbx_fail(-EIO, "write PEM", "write %s", path);
}

int kbx_quic_identity_write_pem(const struct kbx_quic_identity *id, const char *cert_path, const char *key_path)
{
	gnutls_datum_t d = { NULL, 0 };
	int rv = gnutls_x509_crt_export2(id->crt, GNUTLS_X509_FMT_PEM, &d);

	if (rv < 0)
		return kbx_fail(-EPROTO, "export certificate", "%s", gnutls_strerror(rv));
	rv = write_datum(cert_path, &d);
	gnutls_free(d.data);
	if (rv < 0)
		return rv;
	rv = gnutls_x509_privkey_export2_pkcs8(id->key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &d);
	if (rv < 0)
		return kbx_fail(-EPROTO, "write PEM", "export key: %s", gnutls_strerror(rv));
	rv = write_datum(key_path, &d);
	gnutls_free(d.data);
	return rv;
}

int kbx_quic_credentials(const struct kbx_quic_identity *id, gnutls_certificate_credentials_t *out)
{
	gnutls_certificate_credentials_t cred;
	gnutls_x509_crt_t crt = id->crt;
	int rv = gnutls_certificate_allocate_credentials(&cred);

	if (rv < 0)
		return kbx_fail(-ENOMEM, "load TLS credentials", "allocate: %s", gnutls_strerror(rv));
	rv = gnutls_certificate_set_x509_key(cred, &crt, 1, id->key);
	if (rv < 0) {
		gnutls_certificate_free_credentials(cred);
		return kbx_fail(-EPROTO, "load TLS credentials", "set certificate: %s", gnutls_strerror(rv));
	}
	*out = cred;
	return 0;
}
