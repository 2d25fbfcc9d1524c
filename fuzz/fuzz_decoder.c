/*  fuzz_decoder.c - the protocol decoder fed arbitrary frames.

    Each input becomes one multipart message sent over inproc from a DEALER to a ROUTER, and
    sluice_request_recv decodes it; the status parsers get the same bytes as reply text. The
    checks: no crash or sanitizer report, and the decoder's verdict is consistent (a request
    is either accepted with a well-formed header or flagged with a reason).
*/
#include "sluice_socket.h"
#include "sluice.h"
#include "fuzz_frames.h"
#include <stdlib.h>

static zsock_t *s_router;
static zsock_t *s_dealer;

static void
s_cleanup (void)
{
    zsock_destroy (&s_dealer);
    zsock_destroy (&s_router);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    atexit (s_cleanup);
    sluice_err_t err;
    bool secured;
    char why [256];
    s_router = sluice_router_new ("inproc://fuzz-decoder", &(sluice_router_opts_t) { .sndhwm = 1000 },
                                  &err, &secured, why, sizeof why);
    s_dealer = zsock_new_dealer ("inproc://fuzz-decoder");
    if (!s_router || !s_dealer)
        abort ();
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t size)
{
    //  Pure decoding first
    sluice_header_t header;
    sluice_header_decode (input, size, &header);
    sluice_status_t status;
    if (sluice_status_parse ((const char *) input, size, &status) == SLUICE_OK) {
        char text [4096];
        sluice_status_format (&status, true, text, sizeof text);
    }

    //  Then the whole request path, as a peer would send it
    fuzz_frames_t frames;
    fuzz_split (input, size, &frames);
    if (frames.count == 0)
        return 0;
    if (!fuzz_send (zsock_resolve (s_dealer), &frames))
        abort ();
    static sluice_request_t req;        //  its frame array is kept between inputs
    if (!fuzz_wait_input (zsock_resolve (s_router), 5000))
        abort ();                       //  a message sent in-process must arrive
    int rc;
    void *router = zsock_resolve (s_router);
    while ((rc = sluice_request_recv (router, &req, SLUICE_MAX_BATCH)) == -1 && zmq_errno () == EINTR)
        ;                               //  a signal before the first frame: nothing taken yet
    if (rc != 1)
        abort ();
    if (req.error == SLUICE_OK)
        sluice_request_validate (&req, SLUICE_ACTOR_BUFFER | SLUICE_ACTOR_MODEL_SERVER);
    if (req.error == SLUICE_OK) {
        if (req.header.version != SLUICE_PROTOCOL_VERSION || req.header.status != 0)
            abort ();                   //  accepted a header it should have refused
        if ((req.header.flags & SLUICE_FLAG_INLINE) && req.frames.count != 1)
            abort ();                   //  an inline request has exactly its one body frame
    }
    else
    if (!req.reason)
        abort ();                       //  every refusal names its reason
    //  Exactly one message was consumed: nothing of it may be left behind
    static sluice_request_t rest;
    while ((rc = sluice_request_recv (router, &rest, 1)) == -1 && zmq_errno () == EINTR)
        ;
    if (rc != 0)
        abort ();
    sluice_request_fini (&req);
    return 0;
}
