/*  test_buffer_delivery.c - acknowledged reads, vanished peers, liveness (issue 4, in-process).

    Vanished peers are raw DEALERs destroyed mid-conversation; the buffer notices them with its
    periodic probe. Every wait is on a reply: a blocking read that the requeued chunk ends, or
    status round trips bounded by T_WAIT_MS.
*/
#include "common.h"

TestSuite (delivery, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

static void
s_put64 (uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p [i] = (uint8_t) v;
}

static uint64_t
s_get64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p [i];
    return v;
}

//  Encode a request header as docs/PROTOCOL.md lays it out.
static void
s_header (uint8_t *h, uint8_t command, uint8_t flags, uint32_t timeout_ms, uint64_t id,
          uint32_t count)
{
    memset (h, 0, SLUICE_HEADER_SIZE);
    h [0] = SLUICE_PROTOCOL_VERSION;
    h [1] = command;
    h [2] = flags;
    h [4] = (uint8_t) (timeout_ms >> 24); h [5] = (uint8_t) (timeout_ms >> 16);
    h [6] = (uint8_t) (timeout_ms >> 8);  h [7] = (uint8_t) timeout_ms;
    s_put64 (h + 8, id);
    h [16] = (uint8_t) (count >> 24); h [17] = (uint8_t) (count >> 16);
    h [18] = (uint8_t) (count >> 8);  h [19] = (uint8_t) count;
}

static zsock_t *
s_raw (void)
{
    zsock_t *raw = zsock_new_dealer (t_fx.endpoint);
    cr_assert_not_null (raw);
    zsock_set_rcvtimeo (raw, T_WAIT_MS);
    return raw;
}

//  Acknowledged READ from a raw client: returns the reply's first chunk text (caller frees).
static char *
s_raw_read (zsock_t *raw, uint64_t id, uint64_t ack)
{
    uint8_t h [SLUICE_HEADER_SIZE], body [8];
    s_header (h, SLUICE_CMD_READ, SLUICE_FLAG_ACK, SLUICE_WAIT_FOREVER, id, 1);
    s_put64 (body, ack);
    cr_assert_eq (zmq_send (zsock_resolve (raw), h, sizeof h, ZMQ_SNDMORE), (int) sizeof h);
    cr_assert_eq (zmq_send (zsock_resolve (raw), body, 8, 0), 8);
    zmsg_t *reply = zmsg_recv (raw);
    cr_assert_not_null (reply, "no READ reply");
    zframe_t *header = zmsg_first (reply);
    cr_assert_eq (zframe_size (header), SLUICE_HEADER_SIZE);
    cr_assert_eq (zframe_data (header) [3], SLUICE_OK, "READ failed with status %d",
                  zframe_data (header) [3]);
    cr_assert_eq (s_get64 (zframe_data (header) + 8), id, "reply to another request");
    char *text = zframe_strdup (zmsg_next (reply));
    zmsg_destroy (&reply);
    return text;
}

Test (delivery, acknowledged_chunks_are_released_not_redelivered)
{
    t_start (4);
    T_WRITE (t_fx.cli, "one");
    T_WRITE (t_fx.cli, "two");
    sluice_stream_t *reader = sluice_stream_new (t_fx.endpoint);
    T_EXPECT_CHUNK (reader, "one");
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.read, 1);
    T_EXPECT_CHUNK (reader, "two");          //  acknowledges "one"
    //  Destroying the reader acknowledges "two": nothing is held, nothing comes back
    sluice_stream_destroy (&reader);
    T_WAIT_STATUS (st, st.read == 2 && st.queued == 0);
    sluice_stream_t *other = sluice_stream_new (t_fx.endpoint);
    sluice_stream_close (t_fx.cli);
    T_EXPECT_EOS (other);
    sluice_stream_destroy (&other);
    st = t_status ();
    cr_assert_eq (st.read, 2, "a chunk was delivered twice");
}

Test (delivery, chunks_of_a_vanished_reader_go_back_to_the_head)
{
    t_start (4);
    T_WRITE (t_fx.cli, "one");
    T_WRITE (t_fx.cli, "two");
    zsock_t *raw = s_raw ();
    char *text = s_raw_read (raw, 1, 0);
    cr_assert_str_eq (text, "one");
    free (text);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.queued, 1);
    zsock_destroy (&raw);                     //  gone without acknowledging "one"
    //  Once the buffer notices, "one" is queued again, ahead of "two"
    T_WAIT_STATUS (st, st.queued == 2);
    T_EXPECT_CHUNK (t_fx.cli, "one");
    T_EXPECT_CHUNK (t_fx.cli, "two");
}

Test (delivery, a_blocked_reader_gets_the_chunk_of_a_vanished_one)
{
    t_start (4);
    T_WRITE (t_fx.cli, "only");
    zsock_t *raw = s_raw ();
    char *text = s_raw_read (raw, 1, 0);
    cr_assert_str_eq (text, "only");
    free (text);
    zsock_destroy (&raw);
    T_EXPECT_CHUNK (t_fx.cli, "only");      //  parked until the requeue serves it
}

Test (delivery, an_abandoned_reply_is_redelivered)
{
    t_start (4);
    T_WRITE (t_fx.cli, "one");
    T_WRITE (t_fx.cli, "two");
    zsock_t *raw = s_raw ();
    char *text = s_raw_read (raw, 1, 0);
    cr_assert_str_eq (text, "one");
    free (text);
    //  The client says it never received reply 1: its chunk comes back at the head
    text = s_raw_read (raw, 2, 0);
    cr_assert_str_eq (text, "one");
    free (text);
    text = s_raw_read (raw, 3, 2);
    cr_assert_str_eq (text, "two");
    free (text);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.queued, 0);
    zsock_destroy (&raw);
}

Test (delivery, a_vanished_parked_writer_is_swept_and_never_enqueued)
{
    t_start (1);
    T_WRITE (t_fx.cli, "x");
    zsock_t *raw = s_raw ();
    uint8_t h [SLUICE_HEADER_SIZE];
    s_header (h, SLUICE_CMD_WRITE, 0, SLUICE_WAIT_FOREVER, 7, 0);
    cr_assert_eq (zmq_send (zsock_resolve (raw), h, sizeof h, ZMQ_SNDMORE), (int) sizeof h);
    cr_assert_eq (zmq_send (zsock_resolve (raw), "ghost", 5, 0), 5);
    T_WAIT_PARKED_WRITERS (1);
    zsock_destroy (&raw);
    T_WAIT_PARKED_WRITERS (0);
    T_EXPECT_CHUNK (t_fx.cli, "x");
    T_EXPECT_EMPTY (t_fx.cli);
}

Test (delivery, a_vanished_parked_reader_is_swept)
{
    t_start (2);
    zsock_t *raw = s_raw ();
    uint8_t h [SLUICE_HEADER_SIZE];
    s_header (h, SLUICE_CMD_READ, 0, SLUICE_WAIT_FOREVER, 9, 1);
    cr_assert_eq (zmq_send (zsock_resolve (raw), h, sizeof h, 0), (int) sizeof h);
    T_WAIT_PARKED_READERS (1);
    zsock_destroy (&raw);
    T_WAIT_PARKED_READERS (0);
    T_WRITE (t_fx.cli, "y");
    T_EXPECT_CHUNK (t_fx.cli, "y");
}

Test (delivery, ping_is_answered_at_once)
{
    t_start (1);
    zsock_t *raw = s_raw ();
    uint8_t h [SLUICE_HEADER_SIZE];
    s_header (h, SLUICE_CMD_PING, 0, 0, 42, 0);
    cr_assert_eq (zmq_send (zsock_resolve (raw), h, sizeof h, 0), (int) sizeof h);
    zmsg_t *reply = zmsg_recv (raw);
    cr_assert_not_null (reply);
    cr_assert_eq (zmsg_size (reply), 1);
    zframe_t *header = zmsg_first (reply);
    cr_assert_eq (zframe_data (header) [1], SLUICE_CMD_PING);
    cr_assert_eq (zframe_data (header) [3], SLUICE_OK);
    cr_assert_eq (s_get64 (zframe_data (header) + 8), 42);
    zmsg_destroy (&reply);
    zsock_destroy (&raw);
}

typedef struct {
    sluice_stream_t *stream;
    sluice_err_t rc;
} s_blocked_t;

static void *
s_blocked_read (void *arg)
{
    s_blocked_t *blocked = (s_blocked_t *) arg;
    sluice_chunk_t chunk;
    blocked->rc = sluice_stream_read (blocked->stream, &chunk);
    return NULL;
}

Test (delivery, a_dead_buffer_does_not_hang_a_blocked_reader)
{
    t_start (1);
    s_blocked_t blocked = { .stream = sluice_stream_new (t_fx.endpoint), .rc = SLUICE_OK };
    sluice_stream_set_liveness (blocked.stream, 200);
    sluice_stream_set_grace (blocked.stream, 200);
    size_t thread = t_spawn (s_blocked_read, &blocked);
    T_WAIT_PARKED_READERS (1);
    sluice_buffer_destroy (&t_fx.buf);        //  the actor dies with the read parked
    t_join (thread);
    cr_assert_eq (blocked.rc, SLUICE_ETRANSPORT, "got %s", sluice_strerror (blocked.rc));
    sluice_stream_destroy (&blocked.stream);
}
