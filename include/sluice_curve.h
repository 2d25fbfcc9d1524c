/*  sluice_curve.h - CURVE security for tcp endpoints (czmq zcert / zauth).

    An actor given a server certificate encrypts its tcp endpoint and, with an allowed-clients
    directory, accepts only clients whose public certificates are in it (checked by a zauth
    actor, one per process). CURVE with no allowed-clients list would accept any client key —
    encryption without authentication — so an actor refuses to start that way unless
    `encrypt_only` asks for it explicitly.

    Certificates are czmq zcert files: `sluice keygen NAME` (or zcert_save) writes NAME (public)
    and NAME_secret (both keys). Give an actor or a client its *_secret file; put clients' public
    files in the allowed-clients directory; give clients the server's public file or key.

    The struct is read when an actor binds or a client connects; it need not outlive the call.
    One process has one zauth, so all its actors share one allowed-clients directory.
*/
#ifndef SLUICE_CURVE_H_INCLUDED
#define SLUICE_CURVE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "sluice_export.h"
#include "sluice_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *cert;         //  own certificate file with the secret key (server and client)
    const char *allow;        //  server: directory of allowed client public certificates
    bool encrypt_only;        //  server: accept any client key (no authentication) on purpose
    const char *server_key;   //  client: the server's public key (40-char Z85) or its public
                              //  certificate file
} sluice_curve_t;

//  Settings checked before anything starts, with a message naming the setting at fault (the
//  actors refuse what they cannot honour too, but only with SLUICE_EINVAL). `dashes` is how
//  settings are named in messages: "--" for command options, "" for pipeline-file keys.
//  The checks return false with `why` filled.
typedef struct {
    sluice_curve_t curve;     //  what to give the library: points into this struct (do not
                              //  copy it); every field NULL for plaintext
    char server_key [41];     //  client: the server's key, resolved from a key or a file
    char public_key [41];     //  the public key of cert ("" without one)
} sluice_curve_checked_t;

//  Server settings: none (plaintext), or cert with exactly one of allow and encrypt_only.
SLUICE_EXPORT bool
    sluice_curve_check_server (const sluice_curve_t *given, const char *dashes,
                               sluice_curve_checked_t *checked, char *why, size_t why_size);

//  Client settings: none (plaintext), or server_key (a 40-character Z85 key or a certificate
//  file) and optionally cert (without one a throw-away key is used).
SLUICE_EXPORT bool
    sluice_curve_check_client (const sluice_curve_t *given, const char *dashes,
                               sluice_curve_checked_t *checked, char *why, size_t why_size);

//  The settings to hand to an actor or client: NULL when they say plaintext.
SLUICE_EXPORT const sluice_curve_t *
    sluice_curve_checked_get (const sluice_curve_checked_t *checked);

//  A certificate file with its secret key (zcert also finds PATH_secret next to PATH): its
//  public key into public_key (41 bytes). False, with why, when it is missing, not a
//  certificate, or has no secret key.
SLUICE_EXPORT bool
    sluice_curve_cert_public_key (const char *path, char *public_key, char *why, size_t why_size);

//  Write a new certificate pair: `path` (public) and `path`_secret. Returns SLUICE_OK, or
//  SLUICE_EINVAL / SLUICE_ETRANSPORT (file not written).
SLUICE_EXPORT sluice_err_t
    sluice_curve_keygen (const char *path);

#ifdef __cplusplus
}
#endif
#endif
