#ifndef TEST_TLS_CERT_H
#define TEST_TLS_CERT_H

/* Writes a fresh self-signed P-256 certificate for CN=localhost and its key
   as PEM files into `dir`; fills cert_path/key_path (PATH_MAX). Returns 0. */
int test_make_self_signed_cert(const char *dir, char *cert_path, char *key_path);

#endif
