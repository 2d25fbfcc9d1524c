/*  test_retry.c - a client whose actor goes silent (issue 15, part 4): the retry policy
    (sluice_stream_set_retry) and the "unknown" outcome of a write (SLUICE_EUNKNOWN).

    The actor is played by the test: a raw ROUTER in this process that receives what the client
    sends and answers only what the test decides, so an outage is exact: silence until the
    client has shown it is past the point where it would have given up (it sends another PING,
    which only the retry policy does), then an answer. The client call runs on a thread of its
    own; the test waits on the messages it sends and joins it, bounded by T_WAIT_MS, a liveness
    limit, never a timing assertion. Nothing sleeps.
*/
#include "common.h"
#include "sluice_codec.h"

TestSuite (retry, .timeout = T_SUITE_TIMEOUT);

#define R_LIVENESS_MS  100          //  short, so that a silent actor is noticed at once
#define R_GRACE_MS     100
#define R_INCARNATION  0x11112222u
#define R_REBORN       0x33334444u

static unsigned s_serial;

//  The actor: a ROUTER on a fresh inproc endpoint, written to `endpoint`.
static zsock_t *
r_actor (char *endpoint, size_t size)
{
    snprintf (endpoint, size, "inproc://retry-%d-%u", (int) getpid (), s_serial++);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    cr_assert_not_null (router);
    cr_assert_eq (zsock_bind (router, "%s", endpoint), 0);
    return router;
}

//  One request as the actor got it.
typedef struct {
    zframe_t *identity;
    sluice_header_t header;
    char body [64];                 //  first body frame (8-byte ACK ids are compared raw)
    size_t size;                    //  its size (up to sizeof body)
    size_t frames;                  //  frames after the routing id (the header's included)
} r_request_t;

static void
r_request_fini (r_request_t *request)
{
    zframe_destroy (&request->identity);
}

//  The next request the client sends, bounded by T_WAIT_MS.
static r_request_t
r_recv (zsock_t *router)
{
    zmq_pollitem_t item = { zsock_resolve (router), 0, ZMQ_POLLIN, 0 };
    cr_assert_eq (zmq_poll (&item, 1, T_WAIT_MS), 1, "the client sent nothing in %d ms",
                  T_WAIT_MS);
    zmsg_t *msg = zmsg_recv (router);
    cr_assert_not_null (msg);
    r_request_t request;
    memset (&request, 0, sizeof request);
    request.identity = zmsg_pop (msg);
    request.frames = zmsg_size (msg);
    zframe_t *header = zmsg_pop (msg);
    cr_assert_not_null (header);
    cr_assert_eq (sluice_header_decode (zframe_data (header), zframe_size (header),
                                        &request.header), SLUICE_OK);
    //  The client sends a small body inline, in the header frame (revision 1.3)
    zframe_t *body = request.header.flags & SLUICE_FLAG_INLINE
                   ? zframe_new (zframe_data (header) + SLUICE_HEADER_SIZE,
                                 zframe_size (header) - SLUICE_HEADER_SIZE)
                   : zmsg_pop (msg);
    zframe_destroy (&header);
    if (body) {
        request.size = zframe_size (body) < sizeof request.body ? zframe_size (body)
                                                                : sizeof request.body;
        memcpy (request.body, zframe_data (body), request.size);
        zframe_destroy (&body);
    }
    zmsg_destroy (&msg);
    return request;
}

//  The next request, which must be `command`.
static r_request_t
r_expect (zsock_t *router, uint8_t command)
{
    r_request_t request = r_recv (router);
    cr_assert_eq (request.header.command, command, "the client sent command %u, expected %u",
                  request.header.command, command);
    return request;
}

//  Answer `request`: status, flags, the actor's incarnation, and one body frame unless NULL.
static void
r_answer (zsock_t *router, r_request_t *request, uint8_t status, uint8_t flags,
          uint32_t incarnation, const char *body)
{
    sluice_header_t header = {
        .version = SLUICE_PROTOCOL_VERSION, .command = request->header.command,
        .flags = flags, .status = status, .timeout_ms = incarnation,
        .request_id = request->header.request_id, .count = body ? 1 : 0,
    };
    uint8_t bytes [SLUICE_HEADER_SIZE];
    sluice_header_encode (&header, bytes);
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &request->identity);
    zmsg_addmem (msg, bytes, sizeof bytes);
    if (body)
        zmsg_addstr (msg, body);
    cr_assert_eq (zmsg_send (&msg, router), 0);
}

//  Answer `request` OK with `body` inline in the header frame (revision 1.3).
static void
r_answer_inline (zsock_t *router, r_request_t *request, uint32_t incarnation, const char *body)
{
    sluice_header_t header = {
        .version = SLUICE_PROTOCOL_VERSION, .command = request->header.command,
        .flags = SLUICE_FLAG_INLINE, .timeout_ms = incarnation,
        .request_id = request->header.request_id, .count = 1,
    };
    uint8_t frame [SLUICE_HEADER_SIZE + 64];
    size_t size = strlen (body);
    cr_assert_leq (size, 64);
    sluice_header_encode (&header, frame);
    memcpy (frame + SLUICE_HEADER_SIZE, body, size);
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &request->identity);
    zmsg_addmem (msg, frame, SLUICE_HEADER_SIZE + size);
    cr_assert_eq (zmsg_send (&msg, router), 0);
}

// ---------------------------------------------------------------------------------------------
//  The client, on a thread: one write or read

typedef struct {
    sluice_stream_t *stream;
    uint8_t command;                //  SLUICE_CMD_WRITE or SLUICE_CMD_READ
    const char *text;               //  what a write writes
    sluice_err_t rc;
    char error [512];
    char chunk [64];                //  what a read got
    pthread_t thread;
} r_call_t;

static void *
r_call_thread (void *arg)
{
    r_call_t *call = (r_call_t *) arg;
    if (call->command == SLUICE_CMD_WRITE)
        call->rc = sluice_stream_write (call->stream, call->text, strlen (call->text), false);
    else {
        sluice_chunk_t chunk;
        call->rc = sluice_stream_read (call->stream, &chunk);
        if (call->rc == SLUICE_OK)
            snprintf (call->chunk, sizeof call->chunk, "%s", chunk.text);
    }
    snprintf (call->error, sizeof call->error, "%s", sluice_stream_error_text (call->stream));
    return NULL;
}

static void
r_start (r_call_t *call)
{
    cr_assert_eq (pthread_create (&call->thread, NULL, r_call_thread, call), 0);
}

static void
r_join (r_call_t *call)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_sec += T_WAIT_MS / 1000;
    cr_assert_eq (pthread_timedjoin_np (call->thread, NULL, &ts), 0,
                  "the client call did not return within %d ms", T_WAIT_MS);
}

//  A stream to the actor that notices silence at once; retry_for_ms as given.
static sluice_stream_t *
r_stream (const char *endpoint, int retry_for_ms)
{
    sluice_stream_t *stream = sluice_stream_new (endpoint);
    cr_assert_not_null (stream);
    sluice_stream_set_liveness (stream, R_LIVENESS_MS);
    sluice_stream_set_grace (stream, R_GRACE_MS);
    sluice_stream_set_retry (stream, retry_for_ms);
    return stream;
}

//  One write the actor answers at once: the client learns the actor's incarnation.
static void
r_first_write (zsock_t *router, sluice_stream_t *stream)
{
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "first" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    r_answer (router, &write, SLUICE_OK, 0, R_INCARNATION, NULL);
    r_request_fini (&write);
    r_join (&call);
    cr_assert_eq (call.rc, SLUICE_OK, "%s (%s)", sluice_strerror (call.rc), call.error);
}

// ---------------------------------------------------------------------------------------------
//  Without a retry policy

Test (retry, a_write_the_actor_never_answers_has_an_unknown_outcome)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 0);
    r_first_write (router, stream);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "lost?" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    r_request_t ping = r_expect (router, SLUICE_CMD_PING);      //  silence: the liveness ping
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_EUNKNOWN, "got %s (%s)", sluice_strerror (call.rc), call.error);
    cr_expect (strstr (sluice_strerror (SLUICE_EUNKNOWN), "unknown"), "%s",
               sluice_strerror (SLUICE_EUNKNOWN));
    r_request_fini (&write);
    r_request_fini (&ping);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

//  A client that has never heard from the actor cannot know that a connection was ever made
//  (nothing listening, a refused CURVE key: ZeroMQ queues the request all the same), so its
//  unanswered write is reported failed (ETRANSPORT), not unknown. Here the fake actor did get
//  it: the one case this gets wrong, an actor that goes silent before its very first reply.
Test (retry, a_write_of_a_client_that_never_heard_from_the_actor_failed)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 0);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "never" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    r_request_t ping = r_expect (router, SLUICE_CMD_PING);
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_ETRANSPORT, "got %s (%s)", sluice_strerror (call.rc),
                  call.error);
    r_request_fini (&write);
    r_request_fini (&ping);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

Test (retry, a_read_the_actor_never_answers_is_a_transport_error)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 0);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_READ };
    r_start (&call);
    r_request_t read = r_expect (router, SLUICE_CMD_READ);
    r_request_t ping = r_expect (router, SLUICE_CMD_PING);
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_ETRANSPORT, "got %s (%s)", sluice_strerror (call.rc),
                  call.error);
    r_request_fini (&read);
    r_request_fini (&ping);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

//  The actor answers the ping but no longer holds the WRITE: it, or its reply, was lost with a
//  connection. Sending it again could enqueue it twice: the outcome is unknown, and the WRITE
//  is not sent again (the next request the actor sees is the next call's).
Test (retry, a_write_lost_with_its_connection_is_unknown_and_not_sent_again)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 60000);
    r_first_write (router, stream);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "twice?" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    r_request_t ping = r_expect (router, SLUICE_CMD_PING);
    r_answer (router, &ping, SLUICE_OK, 0, R_INCARNATION, NULL);     //  alive, holds nothing
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_EUNKNOWN, "got %s (%s)", sluice_strerror (call.rc), call.error);
    cr_expect (strstr (call.error, "no longer holds"), "error text: %s", call.error);

    r_call_t next = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "next" };
    r_start (&next);
    r_request_t after = r_expect (router, SLUICE_CMD_WRITE);
    cr_expect_eq (after.size, 4, "the lost WRITE was sent again");
    cr_expect (memcmp (after.body, "next", 4) == 0, "the lost WRITE was sent again");
    r_answer (router, &after, SLUICE_OK, 0, R_INCARNATION, NULL);
    r_join (&next);
    cr_expect_eq (next.rc, SLUICE_OK, "%s (%s)", sluice_strerror (next.rc), next.error);
    r_request_fini (&write);
    r_request_fini (&after);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

// ---------------------------------------------------------------------------------------------
//  With a retry policy

//  Past liveness + grace the client would have failed; with a retry policy it pings again
//  (backing off) and takes the reply when the actor comes back.
Test (retry, a_write_rides_out_a_silent_actor_and_takes_its_late_reply)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 60000);
    r_first_write (router, stream);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "late" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    //  The liveness ping, then the retry policy's pings: unanswered, each is followed by
    //  another, with a new id
    r_request_t pings [3];
    for (int index = 0; index < 3; index++) {
        pings [index] = r_expect (router, SLUICE_CMD_PING);
        if (index)
            cr_expect_gt (pings [index].header.request_id, pings [index - 1].header.request_id);
    }
    r_answer (router, &write, SLUICE_OK, 0, R_INCARNATION, NULL);
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_OK, "got %s (%s)", sluice_strerror (call.rc), call.error);
    for (int index = 0; index < 3; index++)
        r_request_fini (&pings [index]);
    r_request_fini (&write);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

//  The same outage, answered late to an EARLIER ping: the actor holds the request (PARKED),
//  so the client goes on waiting, then takes the reply.
Test (retry, a_late_answer_to_an_earlier_ping_ends_the_outage)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 60000);
    r_first_write (router, stream);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "parked" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    r_request_t first = r_expect (router, SLUICE_CMD_PING);
    r_request_t second = r_expect (router, SLUICE_CMD_PING);
    r_answer (router, &first, SLUICE_OK, SLUICE_FLAG_PARKED, R_INCARNATION, NULL);
    r_answer (router, &write, SLUICE_OK, SLUICE_FLAG_PARKED, R_INCARNATION, NULL);
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_OK, "got %s (%s)", sluice_strerror (call.rc), call.error);
    cr_expect (sluice_stream_was_parked (stream));
    r_request_fini (&write);
    r_request_fini (&second);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

Test (retry, a_write_still_unanswered_when_the_retry_time_is_over_is_unknown)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 300);
    r_first_write (router, stream);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "gone" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    r_request_t ping = r_expect (router, SLUICE_CMD_PING);
    r_request_t again = r_expect (router, SLUICE_CMD_PING);     //  retrying
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_EUNKNOWN, "got %s (%s)", sluice_strerror (call.rc), call.error);
    cr_expect (strstr (call.error, "retrying"), "error text: %s", call.error);
    r_request_fini (&write);
    r_request_fini (&ping);
    r_request_fini (&again);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

//  A READ lost with its connection is safe to send again, with the same acknowledgement: the
//  chunks of a reply the client never got stay unacknowledged, so nothing is skipped.
Test (retry, a_read_lost_during_an_outage_is_sent_again_with_its_acknowledgement)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 60000);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_READ };
    r_start (&call);
    r_request_t read = r_expect (router, SLUICE_CMD_READ);
    cr_assert (read.header.flags & SLUICE_FLAG_ACK);
    r_request_t ping = r_expect (router, SLUICE_CMD_PING);
    r_request_t retry = r_expect (router, SLUICE_CMD_PING);
    r_answer (router, &retry, SLUICE_OK, 0, R_INCARNATION, NULL);    //  back, holds nothing
    r_request_t again = r_expect (router, SLUICE_CMD_READ);
    cr_expect_gt (again.header.request_id, read.header.request_id, "a new request id");
    cr_expect_eq (again.size, read.size);
    cr_expect (memcmp (again.body, read.body, read.size) == 0, "another acknowledgement");
    r_answer (router, &again, SLUICE_OK, 0, R_INCARNATION, "x");
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_OK, "got %s (%s)", sluice_strerror (call.rc), call.error);
    cr_expect_str_eq (call.chunk, "x");
    r_request_fini (&read);
    r_request_fini (&ping);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

//  An actor that comes back as a new incarnation lost what it held: retrying does not hide it.
Test (retry, an_actor_back_as_a_new_incarnation_is_reported_restarted)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 60000);
    r_first_write (router, stream);
    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "held" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    r_request_t ping = r_expect (router, SLUICE_CMD_PING);
    r_request_t retry = r_expect (router, SLUICE_CMD_PING);
    r_answer (router, &retry, SLUICE_OK, 0, R_REBORN, NULL);
    r_join (&call);
    cr_expect_eq (call.rc, SLUICE_ERESTARTED, "got %s (%s)", sluice_strerror (call.rc),
                  call.error);
    r_request_fini (&write);
    r_request_fini (&ping);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}

//  Revision 1.3: the client sends a body of up to SLUICE_INLINE_MAX bytes in the header frame,
//  a larger one as a frame of its own, and takes a reply whose body came inline.
Test (retry, small_bodies_travel_inline_both_ways)
{
    char endpoint [128];
    zsock_t *router = r_actor (endpoint, sizeof endpoint);
    sluice_stream_t *stream = r_stream (endpoint, 0);

    r_call_t call = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = "small" };
    r_start (&call);
    r_request_t write = r_expect (router, SLUICE_CMD_WRITE);
    cr_expect_eq (write.frames, 1, "a 5-byte chunk came in %zu frames", write.frames);
    cr_expect (write.header.flags & SLUICE_FLAG_INLINE, "flags 0x%02x", write.header.flags);
    cr_expect (write.size == 5 && memcmp (write.body, "small", 5) == 0);
    r_answer (router, &write, SLUICE_OK, 0, R_INCARNATION, NULL);
    r_join (&call);
    cr_assert_eq (call.rc, SLUICE_OK, "%s (%s)", sluice_strerror (call.rc), call.error);

    r_call_t read = { .stream = stream, .command = SLUICE_CMD_READ };
    r_start (&read);
    r_request_t request = r_expect (router, SLUICE_CMD_READ);
    cr_expect_eq (request.frames, 1, "a READ's acknowledgement came in %zu frames",
                  request.frames);
    cr_expect_eq (request.header.flags & (SLUICE_FLAG_INLINE | SLUICE_FLAG_ACK),
                  SLUICE_FLAG_INLINE | SLUICE_FLAG_ACK);
    r_answer_inline (router, &request, R_INCARNATION, "came inline");
    r_join (&read);
    cr_assert_eq (read.rc, SLUICE_OK, "%s (%s)", sluice_strerror (read.rc), read.error);
    cr_expect_str_eq (read.chunk, "came inline");

    static char big [SLUICE_INLINE_MAX + 2];
    memset (big, 'x', SLUICE_INLINE_MAX + 1);
    r_call_t large = { .stream = stream, .command = SLUICE_CMD_WRITE, .text = big };
    r_start (&large);
    r_request_t frames = r_expect (router, SLUICE_CMD_WRITE);
    cr_expect_eq (frames.frames, 2, "a %d-byte chunk came in %zu frames",
                  SLUICE_INLINE_MAX + 1, frames.frames);
    cr_expect_not (frames.header.flags & SLUICE_FLAG_INLINE);
    r_answer (router, &frames, SLUICE_OK, 0, R_INCARNATION, NULL);
    r_join (&large);
    cr_expect_eq (large.rc, SLUICE_OK, "%s (%s)", sluice_strerror (large.rc), large.error);

    r_request_fini (&write);
    r_request_fini (&request);
    r_request_fini (&frames);
    sluice_stream_destroy (&stream);
    zsock_destroy (&router);
}
