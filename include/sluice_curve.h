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

//  Write a new certificate pair: `path` (public) and `path`_secret. Returns SLUICE_OK, or
//  SLUICE_EINVAL / SLUICE_ETRANSPORT (file not written).
SLUICE_EXPORT sluice_err_t
    sluice_curve_keygen (const char *path);

#ifdef __cplusplus
}
#endif
#endif
