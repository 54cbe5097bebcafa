/* Test helper: a self-signed certificate made in-process with OpenSSL, so the
 * TLS tests need no files from the tree and no openssl command. */
#include "test-tls-cert.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>

int test_make_self_signed_cert(const char *dir, char *cert_path, char *key_path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x509 = X509_new();
	if (key == NULL || x509 == NULL)
		return -1;
	ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
	X509_gmtime_adj(X509_getm_notBefore(x509), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x509), 3600L * 24);
	X509_set_pubkey(x509, key);
	X509_NAME *name = X509_get_subject_name(x509);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
				   -1, -1, 0);
	X509_set_issuer_name(x509, name);
	if (X509_sign(x509, key, EVP_sha256()) == 0)
		return -1;
	snprintf(cert_path, PATH_MAX, "%s/server.crt", dir);
	snprintf(key_path, PATH_MAX, "%s/server.key", dir);
	FILE *f = fopen(cert_path, "w");
	if (f == NULL || PEM_write_X509(f, x509) != 1)
		return -1;
	fclose(f);
	f = fopen(key_path, "w");
	if (f == NULL || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1)
		return -1;
	fclose(f);
	X509_free(x509);
	EVP_PKEY_free(key);
	return 0;
}
