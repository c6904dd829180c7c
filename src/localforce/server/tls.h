/*
 * tls: localforce's certificate and key for HTTPS (--tls-cert/--tls-key, or
 * --tls-self-signed DIR): PEM files read into memory, and a self-signed
 * certificate for 127.0.0.1, ::1 and localhost made once with OpenSSL and
 * kept in DIR/localforce.crt and DIR/localforce.key (0600), so clients can
 * trust it (sfbridge's SF_CA_FILE, curl's --cacert, NODE_EXTRA_CA_CERTS).
 */
#ifndef TLS_H
#define TLS_H

#include "err.h"

#define TLS_CERT_NAME "localforce.crt"
#define TLS_KEY_NAME  "localforce.key"

/* A new RSA-2048 key and a self-signed certificate (valid 10 years, for
 * localhost, 127.0.0.1 and ::1) as PEM text (caller frees both). */
int tls_generate(char **cert_pem, char **key_pem, err_t *e) ERR_MUST_CHECK;
/* DIR's certificate and key, made (and DIR, 0700) when DIR has neither. */
int tls_self_signed(const char *dir, char **cert_pem, char **key_pem, err_t *e) ERR_MUST_CHECK;
/* The two PEM files, checked to hold a certificate and a private key. */
int tls_read(const char *cert_path, const char *key_path, char **cert_pem, char **key_pem,
             err_t *e) ERR_MUST_CHECK;

#endif
