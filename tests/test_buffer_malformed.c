/*  test_buffer_malformed.c - the buffer's wire protocol, from a raw DEALER.

    The frames are built here byte by byte from docs/PROTOCOL.md (not with the library's
    codec), so these tests check the actor against the document. Every malformed request must
    get exactly one error reply (20-byte header, version 1, the right status byte, count 1, and
    one non-empty text frame naming the problem; to a request with INLINE, header and text may
    come in one frame, which m_recv splits), and afterwards the buffer's state (its STATUS
    counters and its queued chunks) must be exactly as before, and it must still serve.
*/
#include "common.h"

#define M_MAX_DEALERS 8
static zsock_t *m_dealers [M_MAX_DEALERS];
static size_t m_ndealers;

//  A reply being checked: freed by the cleanup when an assertion ends the test half way.
static zmsg_t *m_held;

static void
m_cleanup (void)
{
    zmsg_destroy (&m_held);
    for (size_t i = 0; i < m_ndealers; i++)
        zsock_destroy (&m_dealers [i]);
    m_ndealers = 0;
}

//  The buffer's incarnation, as its first reply of the test carried it
static uint32_t m_incarnation;

static void
m_init (void)
{
    t_fx_init ();
    t_fx.cleanup = m_cleanup;
    m_ndealers = 0;
    m_incarnation = 0;
}

TestSuite (buffer_malformed, .init = m_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

// ---------------------------------------------------------------------------------------------
//  Raw frames

static uint64_t
m_get (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

//  A well-formed request header.
static sluice_header_t
m_req (uint8_t command, uint64_t id)
{
    return (sluice_header_t) { .version = SLUICE_PROTOCOL_VERSION, .command = command,
                       .timeout_ms = SLUICE_WAIT_FOREVER, .request_id = id,
                       .count = command == SLUICE_CMD_READ? 1: 0 };
}

static zsock_t *
m_dealer (void)
{
    cr_assert_lt (m_ndealers, M_MAX_DEALERS);
    zsock_t *d = zsock_new (ZMQ_DEALER);
    cr_assert_not_null (d);
    zsock_set_rcvtimeo (d, T_WAIT_MS);
    zsock_set_sndtimeo (d, T_WAIT_MS);
    cr_assert_eq (zsock_connect (d, "%s", t_fx.endpoint), 0, "connect %s", t_fx.endpoint);
    m_dealers [m_ndealers++] = d;
    return d;
}

//  Send a message of n frames (data [i], size [i]).
static void
m_send_frames (zsock_t *d, size_t n, const void *const *data, const size_t *size)
{
    zmsg_t *msg = zmsg_new ();
    for (size_t i = 0; i < n; i++)
        zmsg_addmem (msg, data [i], size [i]);
    cr_assert_eq (zmsg_send (&msg, d), 0, "send: %s", zmq_strerror (zmq_errno ()));
}

//  Send a header plus up to two body frames (NULL body = absent).
static void
m_send (zsock_t *d, const sluice_header_t *h, const void *body1, size_t size1,
        const void *body2, size_t size2)
{
    uint8_t hdr [SLUICE_HEADER_SIZE];
    sluice_header_encode (h, hdr);
    const void *data [3] = { hdr, body1, body2 };
    size_t size [3] = { sizeof hdr, size1, size2 };
    m_send_frames (d, body2? 3: body1? 2: 1, data, size);
}

//  Replies that came inline (SLUICE_FLAG_INLINE) since the last m_reset_inline
static size_t m_inline_replies;

//  The next reply. Liveness probes (request id SLUICE_PROBE_ID with status OK, which the
//  actor may send to a peer with a parked request) are skipped, as a client must. A reply
//  with its body inline (revision 1.3: only to a request that had INLINE) must be one frame;
//  it is returned as the header frame (flag kept) and the body frame, as if sent so.
static zmsg_t *
m_recv (zsock_t *d)
{
    for (;;) {
        zmsg_t *msg = zmsg_recv (d);
        cr_assert_not_null (msg, "no reply from the buffer within %d ms", T_WAIT_MS);
        zframe_t *f = zmsg_first (msg);
        if (f && zframe_size (f) == SLUICE_HEADER_SIZE && zframe_data (f) [3] == SLUICE_OK
        &&  m_get (zframe_data (f) + 8, 8) == SLUICE_PROBE_ID) {
            zmsg_destroy (&msg);
            continue;
        }
        if (f && zframe_size (f) >= SLUICE_HEADER_SIZE && zframe_data (f) [2] & SLUICE_FLAG_INLINE) {
            cr_assert_eq (zmsg_size (msg), 1, "an INLINE reply followed by %zu frames",
                          zmsg_size (msg) - 1);
            zframe_t *whole = zmsg_pop (msg);
            zmsg_addmem (msg, zframe_data (whole), SLUICE_HEADER_SIZE);
            zmsg_addmem (msg, zframe_data (whole) + SLUICE_HEADER_SIZE,
                         zframe_size (whole) - SLUICE_HEADER_SIZE);
            zframe_destroy (&whole);
            m_inline_replies++;
        }
        return msg;
    }
}

//  The reply's first body frame as text, for failure messages (static buffer).
static const char *
m_body_text (zmsg_t *reply)
{
    static char text [256];
    text [0] = '\0';
    if (zmsg_size (reply) > 1) {
        zframe_t *f = zmsg_first (reply);
        f = zmsg_next (reply);
        snprintf (text, sizeof text, "%.*s", (int) zframe_size (f), (char *) zframe_data (f));
        zmsg_first (reply);
    }
    return text;
}

static void
m_decode (zframe_t *f, sluice_header_t *h)
{
    cr_assert_not_null (f);
    cr_assert_eq (zframe_size (f), SLUICE_HEADER_SIZE, "reply header of %zu bytes",
                  zframe_size (f));
    cr_assert_eq (sluice_header_decode (zframe_data (f), zframe_size (f), h), SLUICE_OK);
    cr_assert_eq (h->version, SLUICE_PROTOCOL_VERSION, "reply version %d", h->version);
    //  Every reply carries the actor's incarnation there: nonzero, the same in all of them
    cr_assert_neq (h->timeout_ms, 0, "a reply without the actor's incarnation");
    if (!m_incarnation)
        m_incarnation = h->timeout_ms;
    cr_assert_eq (h->timeout_ms, m_incarnation, "reply incarnation %08x, earlier %08x",
                  h->timeout_ms, m_incarnation);
}

#define M_ANY_ID      UINT64_MAX
#define M_ANY_COMMAND (-1)


//  Receive one reply and check it is the error `status` with one text frame naming it.
static void
m_expect_error (zsock_t *d, sluice_err_t status, uint64_t id, int command)
{
    zmsg_t *reply = m_held = m_recv (d);
    sluice_header_t h;
    const char *body = m_body_text (reply);
    m_decode (zmsg_first (reply), &h);
    cr_assert_eq (h.status, status, "expected %s, got status %d (%s) \"%s\"",
                  sluice_strerror (status), h.status, sluice_strerror (h.status), body);
    cr_assert_eq (h.count, 1, "an error reply has count 1, got %u", h.count);
    cr_assert_eq (zmsg_size (reply), 2, "an error reply has one body frame, got %zu",
                  zmsg_size (reply) - 1);
    if (id != M_ANY_ID)
        cr_assert_eq (h.request_id, id, "request id %llu echoed as %llu",
                      (unsigned long long) id, (unsigned long long) h.request_id);
    if (command != M_ANY_COMMAND)
        cr_assert_eq (h.command, command, "reply tagged command %d, not %d", h.command,
                      command);
    zframe_t *text = zmsg_next (reply);
    size_t size = zframe_size (text);
    const unsigned char *p = zframe_data (text);
    cr_assert_gt (size, 0, "error reply without a text");
    for (size_t i = 0; i < size; i++)
        cr_assert (p [i] >= 0x20 || p [i] == '\n' || p [i] == '\t',
                   "error text has a control byte 0x%02x at %zu", p [i], i);
    m_held = NULL;
    zmsg_destroy (&reply);
}

//  Receive one reply expected to be OK; returns it (caller destroys) with its header in h.
static zmsg_t *
m_expect_ok (zsock_t *d, uint64_t id, int command, sluice_header_t *h)
{
    zmsg_t *reply = m_held = m_recv (d);
    const char *body = m_body_text (reply);
    m_decode (zmsg_first (reply), h);
    cr_assert_eq (h->status, SLUICE_OK, "status %d (%s) \"%s\"", h->status,
                  sluice_strerror (h->status), body);
    cr_assert_eq (h->request_id, id, "reply for request %llu, expected %llu",
                  (unsigned long long) h->request_id, (unsigned long long) id);
    cr_assert_eq (h->command, command);
    //  A packed reply carries its count of chunks in one frame
    size_t frames = h->flags & SLUICE_FLAG_PACKED ? 1 : (size_t) h->count;
    cr_assert_eq (zmsg_size (reply), 1 + frames,
                  "header says %u body frames, message has %zu", h->count, zmsg_size (reply) - 1);
    m_held = NULL;
    return reply;
}

// ---------------------------------------------------------------------------------------------
//  A buffer with known state, and the check that it is intact

static sluice_buffer_status_t m_before;

//  Capacity 4, max chunk 16 bytes, "a" and "b" queued; returns a raw dealer.
static zsock_t *
m_setup (void)
{
    t_start_opts (4, 16, 0, false);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    m_before = t_status ();
    return m_dealer ();
}

static void
m_assert_same_status (sluice_buffer_status_t a, sluice_buffer_status_t b)
{
    cr_assert_eq (a.capacity, b.capacity);
    cr_assert_eq (a.queued, b.queued, "queued %zu -> %zu", a.queued, b.queued);
    cr_assert_eq (a.parked_writers, b.parked_writers);
    cr_assert_eq (a.parked_readers, b.parked_readers, "parked readers %zu -> %zu",
                  a.parked_readers, b.parked_readers);
    cr_assert_eq (a.closed, b.closed, "closed %d -> %d", a.closed, b.closed);
    cr_assert_eq (a.written, b.written, "written %llu -> %llu",
                  (unsigned long long) a.written, (unsigned long long) b.written);
    cr_assert_eq (a.read, b.read);
    cr_assert_eq (a.max_chunk_size, b.max_chunk_size);
}

//  State unchanged, the raw peer is still served, and the queued chunks come out in order.
static void
m_assert_intact (zsock_t *d)
{
    m_assert_same_status (m_before, t_status ());
    sluice_header_t req = m_req (SLUICE_CMD_STATUS, 777), h;
    m_send (d, &req, NULL, 0, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 777, SLUICE_CMD_STATUS, &h);
    zmsg_destroy (&reply);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_EXPECT_CHUNK (t_fx.cli, "b");
    T_EXPECT_EMPTY (t_fx.cli);
    T_WRITE (t_fx.cli, "still-serving");
    T_EXPECT_CHUNK (t_fx.cli, "still-serving");
}

// =============================================================================================
//  Well-formed requests: the framing these tests rely on

T_TEST (buffer_malformed, raw_write_and_batched_read)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 42), h;
    m_send (d, &req, "hello", 5, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 42, SLUICE_CMD_WRITE, &h);
    cr_expect_eq (h.count, 0);
    cr_expect_eq (h.flags & SLUICE_FLAG_PARKED, 0);
    zmsg_destroy (&reply);

    req = m_req (SLUICE_CMD_READ, 43);
    req.count = SLUICE_MAX_BATCH;           //  the largest batch is valid
    m_send (d, &req, NULL, 0, NULL, 0);
    reply = m_expect_ok (d, 43, SLUICE_CMD_READ, &h);
    cr_assert (h.count >= 1 && h.count <= 3, "READ returned %u chunks of 3", h.count);
    const char *expect [] = { "a", "b", "hello" };
    zframe_t *f = zmsg_first (reply);
    for (uint32_t i = 0; i < h.count; i++) {
        f = zmsg_next (reply);
        cr_assert (zframe_streq (f, expect [i]), "chunk %u is not \"%s\"", i, expect [i]);
    }
    cr_expect_eq (h.flags & (SLUICE_FLAG_EOS | SLUICE_FLAG_FINAL), 0);
    uint32_t n = h.count;
    zmsg_destroy (&reply);
    for (uint32_t i = n; i < 3; i++)
        T_EXPECT_CHUNK (t_fx.cli, expect [i]);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.read, 3);
    cr_expect_eq (st.written, 3);
}

T_TEST (buffer_malformed, raw_empty_chunk_is_a_chunk)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 1), h;
    m_send (d, &req, "", 0, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 1, SLUICE_CMD_WRITE, &h);
    zmsg_destroy (&reply);
    cr_expect_eq (t_status ().queued, 3);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_EXPECT_CHUNK (t_fx.cli, "b");
    sluice_chunk_t c;
    T_READ (t_fx.cli, c);
    cr_expect_eq (c.size, 0);
    cr_expect_not (c.is_eos, "an empty chunk of an open buffer read as end of stream");
}

T_TEST (buffer_malformed, raw_read_reply_stops_after_a_final_chunk)
{
    t_start (8);
    zsock_t *d = m_dealer ();
    T_WRITE (t_fx.cli, "x");
    cr_assert_eq (sluice_stream_write (t_fx.cli, "fin", 3, true), SLUICE_OK);
    T_WRITE (t_fx.cli, "y");
    sluice_header_t req = m_req (SLUICE_CMD_READ, 5), h;
    req.count = 10;
    m_send (d, &req, NULL, 0, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 5, SLUICE_CMD_READ, &h);
    cr_assert (h.count >= 1 && h.count <= 2, "READ went past a final chunk (%u chunks)",
               h.count);
    zmsg_first (reply);
    cr_assert (zframe_streq (zmsg_next (reply), "x"));
    if (h.count == 2) {
        cr_assert (zframe_streq (zmsg_next (reply), "fin"));
        cr_assert (h.flags & SLUICE_FLAG_FINAL, "reply ending with a final chunk lacks FINAL");
    }
    else
        cr_assert_not (h.flags & SLUICE_FLAG_FINAL, "FINAL on a reply whose chunk is not final");
    cr_expect_not (h.flags & SLUICE_FLAG_EOS);
    uint32_t n = h.count;
    zmsg_destroy (&reply);
    if (n == 1)
        T_EXPECT_CHUNK_F (t_fx.cli, "fin", true);
    T_EXPECT_CHUNK (t_fx.cli, "y");
}

T_TEST (buffer_malformed, raw_read_of_a_closed_empty_buffer_is_the_sentinel)
{
    t_start (2);
    zsock_t *d = m_dealer ();
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    sluice_header_t req = m_req (SLUICE_CMD_READ, 9), h;
    m_send (d, &req, NULL, 0, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 9, SLUICE_CMD_READ, &h);
    cr_expect_eq (h.flags & (SLUICE_FLAG_EOS | SLUICE_FLAG_FINAL),
                  SLUICE_FLAG_EOS | SLUICE_FLAG_FINAL);
    cr_assert_eq (h.count, 1);
    zmsg_first (reply);
    cr_expect_eq (zframe_size (zmsg_next (reply)), 0);
    zmsg_destroy (&reply);
}

T_TEST (buffer_malformed, raw_parked_reply_carries_the_parked_flag)
{
    t_start (2);
    zsock_t *d = m_dealer ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 11), h;
    m_send (d, &req, NULL, 0, NULL, 0);
    T_WAIT_PARKED_READERS (1);
    T_WRITE (t_fx.cli, "late");
    zmsg_t *reply = m_expect_ok (d, 11, SLUICE_CMD_READ, &h);
    cr_expect (h.flags & SLUICE_FLAG_PARKED, "a READ that waited lacks the PARKED flag");
    cr_assert_eq (h.count, 1);
    zmsg_first (reply);
    cr_expect (zframe_streq (zmsg_next (reply), "late"));
    zmsg_destroy (&reply);
}

T_TEST (buffer_malformed, raw_timeout_zero_read_is_an_error_reply)
{
    t_start (2);
    zsock_t *d = m_dealer ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 12);
    req.timeout_ms = 0;
    m_send (d, &req, NULL, 0, NULL, 0);
    m_expect_error (d, SLUICE_ETIMEOUT, 12, SLUICE_CMD_READ);
    cr_expect_eq (t_status ().parked_readers, 0);
}

T_TEST (buffer_malformed, a_read_with_timeout_zero_is_not_served_by_a_later_write)
{
    //  "timeout_ms 0 = serve now or time out": a READ that finds the buffer empty must get
    //  ETIMEOUT, even when a WRITE arrives right behind it. Both requests are queued before the
    //  buffer exists (inproc allows connect before bind), so the actor receives them together.
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "early");
    zsock_t *d = zsock_new (ZMQ_DEALER);
    cr_assert_not_null (d);
    m_dealers [m_ndealers++] = d;
    zsock_set_rcvtimeo (d, T_WAIT_MS);
    cr_assert_eq (zsock_connect (d, "%s", ep), 0);
    sluice_header_t rd = m_req (SLUICE_CMD_READ, 1), wr = m_req (SLUICE_CMD_WRITE, 2), h;
    rd.timeout_ms = 0;
    m_send (d, &rd, NULL, 0, NULL, 0);
    m_send (d, &wr, "x", 1, NULL, 0);
    t_start_at (ep, 2, 0, 0, false);
    uint8_t status [3] = { 255, 255, 255 };
    uint32_t count [3] = { 0, 0, 0 };
    for (int i = 0; i < 2; i++) {        //  replies may come in either order
        zmsg_t *reply = m_recv (d);
        m_decode (zmsg_first (reply), &h);
        zmsg_destroy (&reply);
        cr_assert (h.request_id == 1 || h.request_id == 2);
        status [h.request_id] = h.status;
        count [h.request_id] = h.count;
    }
    cr_expect_eq (status [2], SLUICE_OK);
    cr_assert_eq (status [1], SLUICE_ETIMEOUT, "a READ with timeout 0 on an empty buffer was "
                  "served (status %d, %u chunk(s)) by a WRITE that arrived after it",
                  status [1], count [1]);
    T_EXPECT_CHUNK (t_fx.cli, "x");
}

T_TEST (buffer_malformed, a_write_with_timeout_zero_is_not_admitted_by_a_later_read)
{
    //  The same for a WRITE that finds the buffer full: ETIMEOUT, never admitted by a READ
    //  that arrives right behind it.
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "early");
    zsock_t *d = zsock_new (ZMQ_DEALER);
    cr_assert_not_null (d);
    m_dealers [m_ndealers++] = d;
    zsock_set_rcvtimeo (d, T_WAIT_MS);
    cr_assert_eq (zsock_connect (d, "%s", ep), 0);
    sluice_header_t fill = m_req (SLUICE_CMD_WRITE, 1), late = m_req (SLUICE_CMD_WRITE, 2),
            rd = m_req (SLUICE_CMD_READ, 3), h;
    late.timeout_ms = 0;
    m_send (d, &fill, "a", 1, NULL, 0);
    m_send (d, &late, "b", 1, NULL, 0);
    m_send (d, &rd, NULL, 0, NULL, 0);
    t_start_at (ep, 1, 0, 0, false);
    sluice_err_t status [4] = { SLUICE_EINTERNAL, SLUICE_EINTERNAL, SLUICE_EINTERNAL,
                                SLUICE_EINTERNAL };
    for (int i = 0; i < 3; i++) {
        zmsg_t *reply = m_recv (d);
        m_decode (zmsg_first (reply), &h);
        zmsg_destroy (&reply);
        cr_assert (h.request_id >= 1 && h.request_id <= 3);
        status [h.request_id] = (sluice_err_t) h.status;
    }
    cr_expect_eq (status [1], SLUICE_OK);
    cr_expect_eq (status [3], SLUICE_OK);
    cr_assert_eq (status [2], SLUICE_ETIMEOUT, "a WRITE with timeout 0 into a full buffer was "
                  "answered %d (%s): admitted by a READ that arrived after it", status [2],
                  sluice_strerror (status [2]));
    cr_expect_eq (t_status ().queued, 0);
}

T_TEST (buffer_malformed, raw_status_text)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_STATUS, 77), h;
    m_send (d, &req, NULL, 0, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 77, SLUICE_CMD_STATUS, &h);
    cr_assert_eq (h.count, 1);
    zmsg_first (reply);
    char *text = zframe_strdup (zmsg_next (reply));
    zmsg_destroy (&reply);
    const char *want [] = { "capacity=4\n", "queued=2\n", "parked_writers=0\n",
                            "parked_readers=0\n", "closed=0\n", "written=2\n", "read=0\n",
                            "max_chunk_size=16\n" };
    for (size_t i = 0; i < sizeof want / sizeof want [0]; i++) {
        //  a line of its own: at the start or after a newline
        const char *at = strstr (text, want [i]);
        while (at && at != text && at [-1] != '\n')
            at = strstr (at + 1, want [i]);
        if (!at) {
            char copy [512];
            snprintf (copy, sizeof copy, "%s", text);
            free (text);
            cr_assert_fail ("status text lacks line \"%.*s\":\n%s",
                            (int) strlen (want [i]) - 1, want [i], copy);
        }
    }
    free (text);
}

T_TEST (buffer_malformed, pipelined_requests_are_answered_with_their_ids)
{
    zsock_t *d = m_setup ();
    sluice_header_t s1 = m_req (SLUICE_CMD_STATUS, 1000), w = m_req (SLUICE_CMD_WRITE, 1001),
            bad = m_req (99, 1002), s2 = m_req (SLUICE_CMD_STATUS, 1003), h;
    m_send (d, &s1, NULL, 0, NULL, 0);
    m_send (d, &w, "c", 1, NULL, 0);
    m_send (d, &bad, NULL, 0, NULL, 0);
    m_send (d, &s2, NULL, 0, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 1000, SLUICE_CMD_STATUS, &h);
    zmsg_destroy (&reply);
    reply = m_expect_ok (d, 1001, SLUICE_CMD_WRITE, &h);
    zmsg_destroy (&reply);
    m_expect_error (d, SLUICE_ECOMMAND, 1002, M_ANY_COMMAND);
    reply = m_expect_ok (d, 1003, SLUICE_CMD_STATUS, &h);
    zmsg_destroy (&reply);
    cr_expect_eq (t_status ().written, 3);
}

// =============================================================================================
//  Malformed requests

T_TEST (buffer_malformed, header_one_byte_short)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_STATUS, 21);
    uint8_t hdr [SLUICE_HEADER_SIZE];
    sluice_header_encode (&req, hdr);
    const void *data [1] = { hdr };
    size_t size [1] = { SLUICE_HEADER_SIZE - 1 };
    m_send_frames (d, 1, data, size);
    //  19 bytes hold the request id (bytes 8..15): it is echoed
    m_expect_error (d, SLUICE_EPROTO, 21, M_ANY_COMMAND);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, header_one_byte_long)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_STATUS, 22);
    uint8_t hdr [SLUICE_HEADER_SIZE + 1] = { 0 };
    sluice_header_encode (&req, hdr);
    const void *data [1] = { hdr };
    size_t size [1] = { sizeof hdr };
    m_send_frames (d, 1, data, size);
    m_expect_error (d, SLUICE_EPROTO, M_ANY_ID, M_ANY_COMMAND);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, truncated_header_echoes_request_id_zero)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 0x0102030405060708ull);
    uint8_t hdr [SLUICE_HEADER_SIZE];
    sluice_header_encode (&req, hdr);
    const void *data [2] = { hdr, "zz" };
    size_t size [2] = { 10, 2 };             //  cut inside the request id
    m_send_frames (d, 2, data, size);
    m_expect_error (d, SLUICE_EPROTO, 0, M_ANY_COMMAND);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, empty_header_frame)
{
    //  a REQ-style empty delimiter in front of a good header
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_STATUS, 23);
    uint8_t hdr [SLUICE_HEADER_SIZE];
    sluice_header_encode (&req, hdr);
    const void *data [2] = { "", hdr };
    size_t size [2] = { 0, sizeof hdr };
    m_send_frames (d, 2, data, size);
    m_expect_error (d, SLUICE_EPROTO, M_ANY_ID, M_ANY_COMMAND);
    //  and an empty frame alone
    m_send_frames (d, 1, data, size);
    m_expect_error (d, SLUICE_EPROTO, M_ANY_ID, M_ANY_COMMAND);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, short_frame_of_another_version_is_eversion)
{
    zsock_t *d = m_setup ();
    const uint8_t v2 [6] = { 2, 1, 0, 0, 0, 0 };
    const void *data [1] = { v2 };
    size_t size [1] = { sizeof v2 };
    m_send_frames (d, 1, data, size);
    m_expect_error (d, SLUICE_EVERSION, M_ANY_ID, M_ANY_COMMAND);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, bad_version)
{
    zsock_t *d = m_setup ();
    uint8_t versions [] = { 0, 2, 255 };
    for (size_t i = 0; i < sizeof versions; i++) {
        sluice_header_t req = m_req (SLUICE_CMD_WRITE, 30 + i);
        req.version = versions [i];
        m_send (d, &req, "v", 1, NULL, 0);
        m_expect_error (d, SLUICE_EVERSION, 30 + i, M_ANY_COMMAND);
    }
    m_assert_intact (d);
}

T_TEST (buffer_malformed, nonzero_status_byte_in_a_request)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 35);
    req.status = SLUICE_ECLOSED;
    m_send (d, &req, "s", 1, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 35, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, unknown_commands)
{
    zsock_t *d = m_setup ();
    uint8_t commands [] = { 0, 10, 11, 42, 99, 128, 255 };
    int tried = 0;
    for (size_t i = 0; i < sizeof commands; i++) {
        if (sluice_command_name (commands [i]))
            continue;            //  a command of some actor now: not "unknown"
        tried++;
        sluice_header_t req = m_req (commands [i], 40 + i);
        m_send (d, &req, NULL, 0, NULL, 0);
        m_expect_error (d, SLUICE_ECOMMAND, 40 + i, M_ANY_COMMAND);
    }
    cr_assert_geq (tried, 3);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, model_server_commands_are_unknown_to_a_buffer)
{
    zsock_t *d = m_setup ();
    uint8_t commands [] = { SLUICE_CMD_REQUEST, SLUICE_CMD_SHUTDOWN, SLUICE_CMD_WAIT };
    for (size_t i = 0; i < sizeof commands; i++) {
        sluice_header_t req = m_req (commands [i], 50 + i);
        m_send (d, &req, NULL, 0, NULL, 0);
        m_expect_error (d, SLUICE_ECOMMAND, 50 + i, M_ANY_COMMAND);
    }
    m_assert_intact (d);
}

T_TEST (buffer_malformed, write_without_a_chunk)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 60);
    m_send (d, &req, NULL, 0, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 60, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, write_with_two_chunk_frames_enqueues_neither)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 61);
    m_send (d, &req, "one", 3, "two", 3);
    m_expect_error (d, SLUICE_EPROTO, 61, M_ANY_COMMAND);
    m_assert_intact (d);
}

//  Send a WRITE of n chunk frames with header count `count`.
static void
m_send_batch (zsock_t *d, sluice_header_t *req, uint32_t count, size_t n, const char *const *chunks)
{
    uint8_t hdr [SLUICE_HEADER_SIZE];
    req->count = count;
    sluice_header_encode (req, hdr);
    const void *data [8] = { hdr };
    size_t size [8] = { sizeof hdr };
    cr_assert_lt (n, 8);
    for (size_t i = 0; i < n; i++) {
        data [i + 1] = chunks [i];
        size [i + 1] = strlen (chunks [i]);
    }
    m_send_frames (d, n + 1, data, size);
}

T_TEST (buffer_malformed, write_batch_count_must_match_its_frames)
{
    zsock_t *d = m_setup ();
    const char *chunks [] = { "x", "y", "z" };
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 64);
    m_send_batch (d, &req, 3, 2, chunks);
    m_expect_error (d, SLUICE_EPROTO, 64, SLUICE_CMD_WRITE);
    m_send_batch (d, &req, 2, 1, chunks);
    m_expect_error (d, SLUICE_EPROTO, 64, SLUICE_CMD_WRITE);
    m_send_batch (d, &req, 2, 3, chunks);
    m_expect_error (d, SLUICE_EPROTO, 64, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, write_batch_larger_than_capacity_enqueues_none)
{
    zsock_t *d = m_setup ();                      //  capacity 4
    const char *chunks [] = { "1", "2", "3", "4", "5" };
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 65);
    m_send_batch (d, &req, 5, 5, chunks);
    m_expect_error (d, SLUICE_EPROTO, 65, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, write_batch_with_an_oversized_chunk_enqueues_none)
{
    zsock_t *d = m_setup ();                      //  max chunk 16
    const char *chunks [] = { "ok", "this chunk is too long", "ok" };
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 66);
    m_send_batch (d, &req, 3, 3, chunks);
    m_expect_error (d, SLUICE_ETOOBIG, 66, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, raw_write_batch_goes_in_whole_and_in_order)
{
    zsock_t *d = m_setup ();                      //  "a", "b" queued of 4
    const char *chunks [] = { "x", "y", "z" };
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 67), h;
    req.flags = SLUICE_FLAG_FINAL;
    m_send_batch (d, &req, 3, 3, chunks);         //  room for 2: parks
    T_WAIT_PARKED_WRITERS (1);
    cr_assert_eq (t_status ().queued, 2, "part of a batch went in");
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_ACK (t_fx.cli);
    zmsg_t *reply = m_expect_ok (d, 67, SLUICE_CMD_WRITE, &h);
    cr_expect_eq (h.count, 0);
    cr_expect (h.flags & SLUICE_FLAG_PARKED, "a deferred WRITE reply lacks PARKED");
    zmsg_destroy (&reply);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.queued, 4);
    cr_assert_eq (st.written, 5);
    T_EXPECT_CHUNK (t_fx.cli, "b");
    T_EXPECT_CHUNK (t_fx.cli, "x");
    T_EXPECT_CHUNK (t_fx.cli, "y");
    T_EXPECT_CHUNK_F (t_fx.cli, "z", true);      //  FINAL marks the batch's last chunk
}

T_TEST (buffer_malformed, write_with_an_unknown_flag)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 62);
    req.flags = SLUICE_FLAG_EOS;
    m_send (d, &req, "e", 1, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 62, SLUICE_CMD_WRITE);
    req.flags = 0x80 | SLUICE_FLAG_FINAL;
    m_send (d, &req, "e", 1, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 62, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, oversized_chunk)
{
    zsock_t *d = m_setup ();
    char big [64];
    memset (big, 'B', sizeof big);
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 63);
    m_send (d, &req, big, 17, NULL, 0);           //  max_chunk_size is 16
    m_expect_error (d, SLUICE_ETOOBIG, 63, SLUICE_CMD_WRITE);
    m_send (d, &req, big, sizeof big, NULL, 0);
    m_expect_error (d, SLUICE_ETOOBIG, 63, SLUICE_CMD_WRITE);
    m_assert_intact (d);
    //  exactly the maximum is accepted
    sluice_header_t h;
    req.request_id = 64;
    m_send (d, &req, big, 16, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 64, SLUICE_CMD_WRITE, &h);
    zmsg_destroy (&reply);
    sluice_chunk_t c;
    T_READ (t_fx.cli, c);
    cr_expect_eq (c.size, 16);
}

T_TEST (buffer_malformed, read_with_count_zero)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 70);
    req.count = 0;
    m_send (d, &req, NULL, 0, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 70, SLUICE_CMD_READ);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, read_with_count_over_the_batch_limit)
{
    zsock_t *d = m_setup ();
    uint32_t counts [] = { SLUICE_MAX_BATCH + 1, 100000, UINT32_MAX };
    for (size_t i = 0; i < sizeof counts / sizeof counts [0]; i++) {
        sluice_header_t req = m_req (SLUICE_CMD_READ, 71 + i);
        req.count = counts [i];
        m_send (d, &req, NULL, 0, NULL, 0);
        m_expect_error (d, SLUICE_EPROTO, 71 + i, SLUICE_CMD_READ);
    }
    m_assert_intact (d);
}

T_TEST (buffer_malformed, read_with_a_body_frame)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 75);
    m_send (d, &req, "x", 1, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 75, SLUICE_CMD_READ);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, read_with_a_flag_other_than_ack)
{
    zsock_t *d = m_setup ();
    uint8_t flags [] = { SLUICE_FLAG_FINAL, SLUICE_FLAG_EOS, SLUICE_FLAG_PARKED, 0x80 };
    for (size_t i = 0; i < sizeof flags; i++) {
        sluice_header_t req = m_req (SLUICE_CMD_READ, 100 + i);
        req.flags = flags [i];
        m_send (d, &req, NULL, 0, NULL, 0);
        m_expect_error (d, SLUICE_EPROTO, 100 + i, SLUICE_CMD_READ);
    }
    m_assert_intact (d);
}

T_TEST (buffer_malformed, read_with_ack_needs_an_8_byte_body)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 110);
    req.flags = SLUICE_FLAG_ACK;
    m_send (d, &req, NULL, 0, NULL, 0);                   //  no body
    m_expect_error (d, SLUICE_EPROTO, 110, SLUICE_CMD_READ);
    req.request_id = 111;
    m_send (d, &req, "1234567", 7, NULL, 0);              //  7 bytes
    m_expect_error (d, SLUICE_EPROTO, 111, SLUICE_CMD_READ);
    req.request_id = 112;
    m_send (d, &req, "123456789", 9, NULL, 0);            //  9 bytes
    m_expect_error (d, SLUICE_EPROTO, 112, SLUICE_CMD_READ);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, ack_needs_an_8_byte_body)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_ACK, 120);
    m_send (d, &req, NULL, 0, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 120, SLUICE_CMD_ACK);
    req.request_id = 121;
    m_send (d, &req, "1234", 4, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 121, SLUICE_CMD_ACK);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, close_with_a_body_frame_does_not_close)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_CLOSE, 130);
    m_send (d, &req, "now", 3, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 130, SLUICE_CMD_CLOSE);
    m_assert_intact (d);
    cr_expect_not (t_status ().closed);
}

T_TEST (buffer_malformed, close_with_extra_frames_does_not_close)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_CLOSE, 80);
    m_send (d, &req, "x", 1, "y", 1);
    m_expect_error (d, SLUICE_EPROTO, 80, M_ANY_COMMAND);
    m_assert_intact (d);
    cr_expect_not (t_status ().closed);
}

T_TEST (buffer_malformed, status_with_extra_frames)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_STATUS, 81);
    uint8_t hdr [SLUICE_HEADER_SIZE];
    sluice_header_encode (&req, hdr);
    const void *data [6] = { hdr, "1", "2", "3", "4", "5" };
    size_t size [6] = { sizeof hdr, 1, 1, 1, 1, 1 };
    m_send_frames (d, 6, data, size);
    m_expect_error (d, SLUICE_EPROTO, 81, M_ANY_COMMAND);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, malformed_requests_do_not_disturb_a_parked_reader)
{
    t_start (2);
    m_before = t_status ();
    zsock_t *d = m_dealer ();
    static t_op_t r;
    t_op_read (&r, SLUICE_FOREVER);
    t_park_op (&r, 1);
    sluice_header_t req = m_req (SLUICE_CMD_READ, 90);
    req.count = 0;
    m_send (d, &req, NULL, 0, NULL, 0);                     //  bad count: must not park
    m_expect_error (d, SLUICE_EPROTO, 90, SLUICE_CMD_READ);
    req = m_req (SLUICE_CMD_WRITE, 91);
    m_send (d, &req, NULL, 0, NULL, 0);                     //  no chunk: must not deliver
    m_expect_error (d, SLUICE_EPROTO, 91, SLUICE_CMD_WRITE);
    req = m_req (SLUICE_CMD_CLOSE, 92);
    req.version = 7;
    m_send (d, &req, NULL, 0, NULL, 0);                     //  bad version: must not close
    m_expect_error (d, SLUICE_EVERSION, 92, M_ANY_COMMAND);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.parked_readers, 1);
    cr_assert_eq (st.queued, 0);
    cr_assert_eq (st.closed, false);
    cr_assert_not (atomic_load (&r.done), "the parked reader was answered by a bad request");
    T_WRITE (t_fx.cli, "for-the-reader");
    t_join_all ();
    cr_assert_eq (r.rc, SLUICE_OK);
    cr_assert_str_eq (r.got, "for-the-reader");
}

T_TEST (buffer_malformed, malformed_requests_do_not_disturb_parked_writers)
{
    t_start_opts (1, 16, 0, false);
    T_WRITE (t_fx.cli, "full");
    zsock_t *d = m_dealer ();
    static t_op_t w;
    t_op_write (&w, "parked", false, SLUICE_FOREVER);
    t_park_op (&w, 1);
    sluice_header_t req = m_req (SLUICE_CMD_READ, 93);
    req.count = SLUICE_MAX_BATCH + 1;
    m_send (d, &req, NULL, 0, NULL, 0);                     //  must not take "full"
    m_expect_error (d, SLUICE_EPROTO, 93, SLUICE_CMD_READ);
    char big [17] = "0123456789abcdef";
    req = m_req (SLUICE_CMD_WRITE, 94);
    m_send (d, &req, big, 17, NULL, 0);
    m_expect_error (d, SLUICE_ETOOBIG, 94, SLUICE_CMD_WRITE);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.parked_writers, 1);
    cr_assert_eq (st.queued, 1);
    cr_assert_eq (st.written, 1);
    T_EXPECT_CHUNK (t_fx.cli, "full");
    T_EXPECT_CHUNK (t_fx.cli, "parked");
    t_join_all ();
    cr_assert_eq (w.rc, SLUICE_OK);
}

T_TEST (buffer_malformed, a_burst_of_garbage_gets_one_error_reply_each)
{
    enum { N = 300 };
    zsock_t *d = m_setup ();
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        uint8_t frames [4][48];
        const void *data [4];
        size_t size [4];
        size_t n = 1 + (size_t) (i % 4);
        for (size_t k = 0; k < n; k++) {
            for (size_t j = 0; j < sizeof frames [k]; j++) {
                x ^= x << 13; x ^= x >> 17; x ^= x << 5;
                frames [k][j] = (uint8_t) x;
            }
            data [k] = frames [k];
            size [k] = x % sizeof frames [k];
        }
        if (size [0] == SLUICE_HEADER_SIZE)
            size [0]++;          //  never a well-formed header: it could be a valid request
        m_send_frames (d, n, data, size);
    }
    for (int i = 0; i < N; i++) {
        zmsg_t *reply = m_recv (d);
        sluice_header_t h;
        m_decode (zmsg_first (reply), &h);
        cr_assert (h.status == SLUICE_EPROTO || h.status == SLUICE_EVERSION,
                   "garbage message %d answered with status %d", i, h.status);
        cr_assert_eq (h.count, 1);
        cr_assert_eq (zmsg_size (reply), 2);
        zmsg_destroy (&reply);
    }
    //  exactly one reply each: nothing more is waiting
    zmsg_t *extra = NULL;
    if (zsock_events (d) & ZMQ_POLLIN)
        extra = zmsg_recv (d);
    cr_assert_null (extra, "more replies than requests");
    m_assert_intact (d);
}

// =============================================================================================
//  A reader that cannot take its reply: the chunk goes back to the head of the queue

T_TEST (buffer_malformed, a_reply_that_cannot_be_queued_is_never_lost_or_doubled)
{
    //  A small max_parked keeps the actor's send queue per peer small (the implementation sizes
    //  it from max_parked); a peer that never reads then fills it, and the reply to its parked
    //  READ cannot be queued. Either way the chunk must exist exactly once: back in the buffer
    //  (the documented outcome for a reply that cannot be sent), or in that peer's queue.
    t_start_opts (4, 0, 10, false);
    zsock_t *d = zsock_new (ZMQ_DEALER);
    cr_assert_not_null (d);
    m_dealers [m_ndealers++] = d;
    zsock_set_rcvhwm (d, 1);
    zsock_set_sndtimeo (d, T_WAIT_MS);
    cr_assert_eq (zsock_connect (d, "%s", t_fx.endpoint), 0);
    enum { FILL = 1500 };
    //  ~500 "reply undeliverable" debug lines are expected: keep them out of the test log
    zsys_set_logstream (NULL);
    for (int i = 0; i < FILL; i++) {
        sluice_header_t req = m_req (SLUICE_CMD_STATUS, 5000 + (uint64_t) i);
        m_send (d, &req, NULL, 0, NULL, 0);
    }
    sluice_header_t req = m_req (SLUICE_CMD_READ, 9999);
    m_send (d, &req, NULL, 0, NULL, 0);
    //  The READ came after every STATUS on the same pipe: once it is parked, all were handled.
    T_WAIT_PARKED_READERS (1);
    T_WRITE (t_fx.cli, "precious");
    sluice_buffer_status_t st = t_status ();
    zsys_set_logstream (stderr);
    bool requeued = st.read == 0;
    cr_log_info ("reply to the stuck peer %s", requeued? "could not be queued: chunk requeued"
                                                      : "was queued");
    int in_buffer = 0;
    if (requeued) {
        cr_assert_eq (st.queued, 1);
        T_EXPECT_CHUNK (t_fx.cli, "precious");
        in_buffer = 1;
    }
    else
        cr_assert_eq (st.queued, 0, "counted as read and still queued");
    T_EXPECT_EMPTY (t_fx.cli);
    //  What the stuck peer holds
    int replies = 0, in_peer = 0;
    zmsg_t *msg;
    while ((zsock_events (d) & ZMQ_POLLIN) && (msg = zmsg_recv (d))) {
        zframe_t *f = zmsg_first (msg);
        if (zframe_size (f) == SLUICE_HEADER_SIZE && m_get (zframe_data (f) + 8, 8) == 9999
        &&  zframe_data (f) [3] == SLUICE_OK) {
            zframe_t *chunk = zmsg_next (msg);
            in_peer += chunk && zframe_streq (chunk, "precious");
        }
        replies++;
        zmsg_destroy (&msg);
    }
    cr_log_info ("the stuck peer holds %d of %d replies", replies, FILL + 1);
    cr_assert_eq (in_buffer + in_peer, 1, "\"precious\" exists %d times (buffer %d, peer %d)",
                  in_buffer + in_peer, in_buffer, in_peer);
}

// =============================================================================================
//  Parking limits: one connection cannot take the room every other one needs

//  Park WRITEs of `size` bytes from `d` (ids from `first`) until one is refused with EBUSY;
//  returns how many were parked. The buffer (capacity 1) is full, so every write parks.
static int
m_flood (zsock_t *d, uint64_t first, size_t size, const char *limit)
{
    char chunk [512];
    cr_assert_leq (size, sizeof chunk);
    memset (chunk, 'f', size);
    for (int parked = 0; parked < 1000; parked++) {
        sluice_header_t req = m_req (SLUICE_CMD_WRITE, first + (uint64_t) parked);
        req.count = 1;
        m_send (d, &req, chunk, size, NULL, 0);
        //  Each write either parks (no reply) or is refused: ask the actor which, in order
        sluice_header_t ping = m_req (SLUICE_CMD_PING, 1);
        m_send (d, &ping, NULL, 0, NULL, 0);
        zmsg_t *reply = m_recv (d);
        sluice_header_t h;
        m_decode (zmsg_first (reply), &h);
        if (h.command == SLUICE_CMD_PING) {
            zmsg_destroy (&reply);
            continue;       //  parked
        }
        cr_assert_eq (h.status, SLUICE_EBUSY, "write %d: status %s \"%s\"", parked,
                      sluice_strerror (h.status), m_body_text (reply));
        cr_assert (strstr (m_body_text (reply), limit), "EBUSY text \"%s\" does not name %s",
                   m_body_text (reply), limit);
        zmsg_destroy (&reply);
        reply = m_recv (d);     //  the PING's reply
        zmsg_destroy (&reply);
        return parked;
    }
    cr_assert_fail ("1000 writes parked from one connection");
    return -1;
}

T_TEST (buffer_malformed, one_connection_cannot_take_the_parking_room_of_others)
{
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "router");
    t_start_with (&(sluice_buffer_opts_t) { .endpoint = ep, .capacity = 1,
        .peer_max_parked = 8, .peer_max_parked_bytes = 1000, .max_parked = 20,
        .max_parked_bytes = 100000 });
    T_WRITE (t_fx.cli, "first");            //  full from now on
    //  By count: the 9th parked request of one connection is refused, naming the limit
    zsock_t *flood = m_dealer ();
    cr_expect_eq (m_flood (flood, 100, 10, "peer-max-parked"), 8);
    //  By bytes: 300-byte writes, at most 1000 bytes parked per connection
    zsock_t *heavy = m_dealer ();
    cr_expect_eq (m_flood (heavy, 200, 300, "peer-max-parked-bytes"), 3);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_writers, 11);
    //  Another connection is still served: it reads, and its write is admitted in turn
    sluice_stream_t *other = t_stream ();
    T_EXPECT_CHUNK (other, "first");
    T_ACK (other);
    T_WAIT_STATUS (st, st.written >= 2);    //  the room went to the oldest parked writer
    cr_expect_eq (st.parked_writers, 10);
    //  Everyone's requests together stop at max_parked
    zsock_t *third = m_dealer ();
    cr_expect_eq (m_flood (third, 300, 10, "peer-max-parked"), 8);
    zsock_t *fourth = m_dealer ();
    cr_expect_eq (m_flood (fourth, 400, 10, "(max-parked)"), 2);
    T_WAIT_PARKED_WRITERS (20);
}

T_TEST (buffer_malformed, parked_bytes_in_all_have_a_bound)
{
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "router");
    t_start_with (&(sluice_buffer_opts_t) { .endpoint = ep, .capacity = 1,
        .max_parked_bytes = 1000 });
    T_WRITE (t_fx.cli, "first");
    zsock_t *a = m_dealer (), *b = m_dealer ();
    cr_expect_eq (m_flood (a, 100, 400, "max-parked-bytes"), 2);
    cr_expect_eq (m_flood (b, 200, 400, "(max-parked-bytes)"), 0);
    //  A read needs no bytes: it parks as before
    sluice_header_t read = m_req (SLUICE_CMD_READ, 300);
    zsock_t *reader = m_dealer ();
    T_EXPECT_CHUNK (t_fx.cli, "first");
    T_ACK (t_fx.cli);
    m_send (reader, &read, NULL, 0, NULL, 0);
    sluice_header_t h;
    zmsg_t *reply = m_expect_ok (reader, 300, SLUICE_CMD_READ, &h);
    zmsg_destroy (&reply);
}

// =============================================================================================
//  Rules docs/PROTOCOL.md states that were once implicit (issue 13)

//  Request id 0 is the actors' probe, which clients ignore: a request with it is refused.
T_TEST (buffer_malformed, request_id_zero_is_refused)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 0);
    m_send (d, &req, NULL, 0, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 0, SLUICE_CMD_READ);
    m_assert_intact (d);
}

//  Every command takes only the flags its section lists: STATUS and PING none.
T_TEST (buffer_malformed, status_and_ping_take_no_flags)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_STATUS, 130);
    req.flags = SLUICE_FLAG_FINAL;
    m_send (d, &req, NULL, 0, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 130, SLUICE_CMD_STATUS);
    req = m_req (SLUICE_CMD_PING, 131);
    req.flags = SLUICE_FLAG_PARKED;
    m_send (d, &req, NULL, 0, NULL, 0);
    m_expect_error (d, SLUICE_EPROTO, 131, SLUICE_CMD_PING);
    m_assert_intact (d);
}

//  ACK's body is the reply id, big-endian like every integer of the protocol. The same id in
//  the other byte order names a reply never sent, so the held chunk goes back to the queue;
//  in the right order it is released. A well-formed ACK has no reply.
T_TEST (buffer_malformed, ack_body_is_a_big_endian_reply_id)
{
    t_start_opts (4, 16, 0, false);
    T_WRITE (t_fx.cli, "a");
    static const uint8_t little [8] = { 8, 7, 6, 5, 4, 3, 2, 1 };
    static const uint8_t big [8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const uint8_t *bodies [2] = { little, big };
    for (int index = 0; index < 2; index++) {
        zsock_t *d = m_dealer ();
        sluice_header_t req = m_req (SLUICE_CMD_READ, 0x0102030405060708ull), h;
        req.flags = SLUICE_FLAG_ACK;
        m_send (d, &req, "\0\0\0\0\0\0\0\0", 8, NULL, 0);
        zmsg_t *reply = m_expect_ok (d, req.request_id, SLUICE_CMD_READ, &h);
        zmsg_destroy (&reply);
        req = m_req (SLUICE_CMD_ACK, 140 + (uint64_t) index);
        m_send (d, &req, bodies [index], 8, NULL, 0);
        //  A STATUS after it on the same connection is answered after the ACK was handled
        req = m_req (SLUICE_CMD_STATUS, 150 + (uint64_t) index);
        m_send (d, &req, NULL, 0, NULL, 0);
        reply = m_expect_ok (d, 150 + (uint64_t) index, SLUICE_CMD_STATUS, &h);
        zframe_t *text = zmsg_next (reply);
        cr_assert_not_null (text);
        char body [1024];
        snprintf (body, sizeof body, "%.*s", (int) zframe_size (text), (char *) zframe_data (text));
        zmsg_destroy (&reply);
        cr_assert (strstr (body, "\nunacked=0\n"), "after ACK %d: %s", index, body);
        cr_assert (strstr (body, index == 0 ? "\nqueued=1\n" : "\nqueued=0\n"),
                   "after the %s ACK: %s", index == 0 ? "little-endian" : "big-endian", body);
    }
}

//  Flags are bits: the end of stream given to a parked reader carries PARKED too (0x07).
T_TEST (buffer_malformed, end_of_stream_to_a_parked_reader_carries_parked)
{
    t_start_opts (4, 16, 0, false);
    zsock_t *d = m_dealer ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 160), h;
    m_send (d, &req, NULL, 0, NULL, 0);
    req = m_req (SLUICE_CMD_STATUS, 161);
    m_send (d, &req, NULL, 0, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 161, SLUICE_CMD_STATUS, &h);   //  so the READ is parked
    zmsg_destroy (&reply);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    reply = m_expect_ok (d, 160, SLUICE_CMD_READ, &h);
    zmsg_destroy (&reply);
    cr_assert_eq (h.flags, SLUICE_FLAG_FINAL | SLUICE_FLAG_EOS | SLUICE_FLAG_PARKED,
                  "flags 0x%02x", h.flags);
}

// =============================================================================================
//  Packed bodies (SLUICE_FLAG_PACKED): each chunk as a 4-byte big-endian size, its bytes and
//  one 0 byte, all in one frame

//  Pack `n` strings into out; returns the size.
static size_t
m_pack (uint8_t *out, size_t n, const char *const *chunks)
{
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t size = strlen (chunks [i]);
        out [used] = (uint8_t) (size >> 24);
        out [used + 1] = (uint8_t) (size >> 16);
        out [used + 2] = (uint8_t) (size >> 8);
        out [used + 3] = (uint8_t) size;
        memcpy (out + used + 4, chunks [i], size);
        out [used + 4 + size] = 0;
        used += size + 5;
    }
    return used;
}

static void
m_send_packed (zsock_t *d, uint64_t id, uint8_t flags, uint32_t count, const void *body,
               size_t size)
{
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, id);
    req.flags = SLUICE_FLAG_PACKED | flags;
    req.count = count;
    m_send (d, &req, body, size, NULL, 0);
}

T_TEST (buffer_malformed, packed_write_and_packed_read)
{
    zsock_t *d = m_setup ();                      //  "a" and "b" queued, capacity 4
    const char *chunks [] = { "x", "", "yz" };
    uint8_t body [64];
    size_t size = m_pack (body, 2, chunks + 1);
    m_send_packed (d, 170, SLUICE_FLAG_FINAL, 2, body, size);
    sluice_header_t h;
    zmsg_t *reply = m_expect_ok (d, 170, SLUICE_CMD_WRITE, &h);
    cr_expect_eq (h.count, 0);
    zmsg_destroy (&reply);
    cr_assert_eq (t_status ().queued, 4);

    sluice_header_t req = m_req (SLUICE_CMD_READ, 171);
    req.flags = SLUICE_FLAG_PACKED;
    req.count = 10;
    m_send (d, &req, NULL, 0, NULL, 0);
    reply = m_expect_ok (d, 171, SLUICE_CMD_READ, &h);
    cr_assert (h.flags & SLUICE_FLAG_PACKED, "a packed READ got a reply of frames");
    cr_assert (h.flags & SLUICE_FLAG_FINAL, "the reply ends with the final chunk");
    //  The reply stops after the final chunk: all four, packed exactly as the protocol says
    const char *expect [] = { "a", "b", "", "yz" };
    uint8_t packed [64];
    size_t packed_size = m_pack (packed, 4, expect);
    cr_assert_eq (h.count, 4, "count %u", h.count);
    zframe_t *frame = zmsg_next (reply);
    cr_assert_eq (zframe_size (frame), packed_size);
    cr_assert (memcmp (zframe_data (frame), packed, packed_size) == 0, "packed reply differs");
    zmsg_destroy (&reply);
    T_EXPECT_EMPTY (t_fx.cli);
}

T_TEST (buffer_malformed, malformed_packed_writes_enqueue_nothing)
{
    zsock_t *d = m_setup ();
    const char *chunks [] = { "x", "yy", "z" };
    uint8_t body [64];
    size_t size = m_pack (body, 3, chunks);
    //  count other than the chunks packed
    m_send_packed (d, 180, 0, 2, body, size);
    m_expect_error (d, SLUICE_EPROTO, 180, SLUICE_CMD_WRITE);
    m_send_packed (d, 181, 0, 4, body, size);
    m_expect_error (d, SLUICE_EPROTO, 181, SLUICE_CMD_WRITE);
    m_send_packed (d, 182, 0, 0, body, size);
    m_expect_error (d, SLUICE_EPROTO, 182, SLUICE_CMD_WRITE);
    //  a truncated last chunk, a size running past the frame, a missing 0 byte
    m_send_packed (d, 183, 0, 3, body, size - 1);
    m_expect_error (d, SLUICE_EPROTO, 183, SLUICE_CMD_WRITE);
    uint8_t bad [64];
    memcpy (bad, body, size);
    bad [3] = 200;
    m_send_packed (d, 184, 0, 3, bad, size);
    m_expect_error (d, SLUICE_EPROTO, 184, SLUICE_CMD_WRITE);
    memcpy (bad, body, size);
    bad [5] = 'q';
    m_send_packed (d, 185, 0, 3, bad, size);
    m_expect_error (d, SLUICE_EPROTO, 185, SLUICE_CMD_WRITE);
    //  two body frames
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 186);
    req.flags = SLUICE_FLAG_PACKED;
    req.count = 3;
    m_send (d, &req, body, size, body, size);
    m_expect_error (d, SLUICE_EPROTO, 186, SLUICE_CMD_WRITE);
    //  more chunks than the capacity (4), a chunk over max_chunk_size (16)
    const char *five [] = { "1", "2", "3", "4", "5" };
    size = m_pack (body, 5, five);
    m_send_packed (d, 187, 0, 5, body, size);
    m_expect_error (d, SLUICE_EPROTO, 187, SLUICE_CMD_WRITE);
    const char *big [] = { "ok", "seventeen bytes!!" };
    size = m_pack (body, 2, big);
    m_send_packed (d, 188, 0, 2, body, size);
    m_expect_error (d, SLUICE_ETOOBIG, 188, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, packed_flag_on_other_commands_is_refused)
{
    zsock_t *d = m_setup ();
    uint8_t commands [] = { SLUICE_CMD_CLOSE, SLUICE_CMD_STATUS, SLUICE_CMD_PING };
    for (size_t i = 0; i < sizeof commands; i++) {
        sluice_header_t req = m_req (commands [i], 190 + i);
        req.flags = SLUICE_FLAG_PACKED;
        m_send (d, &req, NULL, 0, NULL, 0);
        m_expect_error (d, SLUICE_EPROTO, 190 + i, commands [i]);
    }
    m_assert_intact (d);
}

//  A packed reply to an acknowledging reader is held like any other: a reader that vanishes
//  without acknowledging it gives its chunks back, in order.
T_TEST (buffer_malformed, packed_read_with_ack_is_requeued_when_the_reader_vanishes)
{
    zsock_t *d = m_setup ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 200), h;
    req.flags = SLUICE_FLAG_PACKED | SLUICE_FLAG_ACK;
    req.count = 2;
    uint8_t none [8] = { 0 };
    m_send (d, &req, none, sizeof none, NULL, 0);
    zmsg_t *reply = m_expect_ok (d, 200, SLUICE_CMD_READ, &h);
    cr_assert_eq (h.count, 2);
    zmsg_destroy (&reply);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.unacked, 2);
    cr_assert_eq (st.queued, 0);
    //  The reader goes away; the buffer notices (its probe) and requeues both chunks
    zsock_destroy (&m_dealers [--m_ndealers]);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_EXPECT_CHUNK (t_fx.cli, "b");
}

//  A packed reply spanning chunks of several frames (two plain writes and a packed one ending
//  in a final chunk), held for acknowledgement and given back when its reader vanishes: the
//  chunks return to the head in their order, the final one still final, and the counters say
//  so at each step.
T_TEST (buffer_malformed, a_requeued_packed_delivery_keeps_order_flags_and_counts)
{
    zsock_t *d = m_setup ();                      //  "a" and "b" queued, capacity 4
    const char *chunks [] = { "c", "dd" };
    uint8_t body [32];
    size_t size = m_pack (body, 2, chunks);
    m_send_packed (d, 210, SLUICE_FLAG_FINAL, 2, body, size);
    sluice_header_t h;
    zmsg_t *reply = m_expect_ok (d, 210, SLUICE_CMD_WRITE, &h);
    zmsg_destroy (&reply);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.queued, 4);
    cr_assert_eq (st.written, 4);

    zsock_t *reader = m_dealer ();
    sluice_header_t req = m_req (SLUICE_CMD_READ, 211);
    req.flags = SLUICE_FLAG_PACKED | SLUICE_FLAG_ACK;
    req.count = 10;
    uint8_t none [8] = { 0 };
    m_send (reader, &req, none, sizeof none, NULL, 0);
    reply = m_expect_ok (reader, 211, SLUICE_CMD_READ, &h);
    cr_assert_eq (h.count, 4);
    cr_assert (h.flags & SLUICE_FLAG_FINAL);
    zmsg_destroy (&reply);
    st = t_status ();
    cr_assert_eq (st.queued, 0);
    cr_assert_eq (st.unacked, 4);
    cr_assert_eq (st.read, 4);

    zsock_destroy (&m_dealers [--m_ndealers]);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    //  Only the "a" just read is held now (by this reader); the rest are queued again
    st = t_status ();
    cr_assert_eq (st.unacked, 1, "unacked %zu: the vanished reader's chunks are still counted",
                  st.unacked);
    cr_assert_eq (st.queued, 3);
    cr_assert_eq (st.written, 4);
    T_EXPECT_CHUNK (t_fx.cli, "b");
    T_EXPECT_CHUNK (t_fx.cli, "c");
    T_EXPECT_CHUNK_F (t_fx.cli, "dd", true);
    cr_assert_eq (t_status ().read, 4, "each chunk counted as read once");
    (void) d;
}

// =============================================================================================
//  Inline bodies (SLUICE_FLAG_INLINE, revision 1.3): a request's one body frame follows its
//  20 header bytes in the header frame; such a request is answered the same way when the
//  reply's body is one frame of at most SLUICE_INLINE_MAX bytes, and as frames otherwise

//  Header (INLINE set) and body as one frame, into out; returns its size.
static size_t
m_inline_frame (sluice_header_t req, const void *body, size_t size, uint8_t *out)
{
    req.flags |= SLUICE_FLAG_INLINE;
    sluice_header_encode (&req, out);
    memcpy (out + SLUICE_HEADER_SIZE, body, size);
    return SLUICE_HEADER_SIZE + size;
}

static void
m_send_inline (zsock_t *d, sluice_header_t req, const void *body, size_t size)
{
    uint8_t frame [SLUICE_HEADER_SIZE + 4096];
    cr_assert_leq (size, 4096);
    const void *data [1] = { frame };
    size_t sizes [1] = { m_inline_frame (req, body, size, frame) };
    m_send_frames (d, 1, data, sizes);
}

T_TEST (buffer_malformed, inline_write_and_inline_read)
{
    zsock_t *d = m_setup ();                      //  "a" and "b" queued, capacity 4
    m_inline_replies = 0;
    m_send_inline (d, m_req (SLUICE_CMD_WRITE, 300), "hello", 5);
    sluice_header_t h;
    zmsg_t *reply = m_expect_ok (d, 300, SLUICE_CMD_WRITE, &h);
    cr_expect_eq (h.count, 0);
    cr_expect_eq (m_inline_replies, 0, "a reply without a body came with INLINE");
    zmsg_destroy (&reply);
    cr_assert_eq (t_status ().queued, 3);

    //  An acknowledging READ: its 8-byte body inline; the one chunk comes back inline
    sluice_header_t req = m_req (SLUICE_CMD_READ, 301);
    req.flags = SLUICE_FLAG_ACK;
    uint8_t none [8] = { 0 };
    m_send_inline (d, req, none, sizeof none);
    reply = m_expect_ok (d, 301, SLUICE_CMD_READ, &h);
    cr_assert (h.flags & SLUICE_FLAG_INLINE, "the chunk did not come inline (flags 0x%02x)",
               h.flags);
    cr_assert_eq (m_inline_replies, 1);
    cr_assert_eq (h.count, 1);
    zmsg_first (reply);
    cr_assert (zframe_streq (zmsg_next (reply), "a"));
    zmsg_destroy (&reply);

    //  A request without INLINE is answered with frames, as by revision 1.2
    req = m_req (SLUICE_CMD_READ, 302);
    m_send (d, &req, NULL, 0, NULL, 0);
    reply = m_expect_ok (d, 302, SLUICE_CMD_READ, &h);
    cr_assert_not (h.flags & SLUICE_FLAG_INLINE);
    cr_assert_eq (m_inline_replies, 1, "a request without INLINE was answered inline");
    zmsg_first (reply);
    cr_assert (zframe_streq (zmsg_next (reply), "b"));
    zmsg_destroy (&reply);
    T_EXPECT_CHUNK (t_fx.cli, "hello");
    T_EXPECT_EMPTY (t_fx.cli);
}

T_TEST (buffer_malformed, inline_reply_only_for_one_small_frame)
{
    t_start_opts (8, 4096, 0, false);
    zsock_t *d = m_dealer ();
    char big [SLUICE_INLINE_MAX + 1];
    memset (big, 'x', sizeof big);
    cr_assert_eq (sluice_stream_write (t_fx.cli, big, sizeof big, false), SLUICE_OK);
    T_WRITE (t_fx.cli, "one");
    T_WRITE (t_fx.cli, "two");
    m_inline_replies = 0;

    //  A chunk past SLUICE_INLINE_MAX comes as a frame, and the reply has no INLINE
    sluice_header_t req = m_req (SLUICE_CMD_READ, 310), h;
    m_send_inline (d, req, "", 0);              //  a plain READ has no body: INLINE is refused
    m_expect_error (d, SLUICE_EPROTO, 310, SLUICE_CMD_READ);
    cr_assert_eq (m_inline_replies, 1, "the error to an INLINE request came as frames");
    req.flags = SLUICE_FLAG_ACK;
    uint8_t none [8] = { 0 };
    m_send_inline (d, req, none, sizeof none);
    zmsg_t *reply = m_expect_ok (d, 310, SLUICE_CMD_READ, &h);
    cr_assert_not (h.flags & SLUICE_FLAG_INLINE, "a %zu-byte chunk came inline", sizeof big);
    cr_assert_eq (m_inline_replies, 1);
    zmsg_first (reply);
    cr_assert_eq (zframe_size (zmsg_next (reply)), sizeof big);
    zmsg_destroy (&reply);

    //  Two chunks are two frames: no INLINE either
    req = m_req (SLUICE_CMD_READ, 311);
    req.flags = SLUICE_FLAG_ACK;
    req.count = 2;
    uint8_t acked [8];
    for (int i = 0; i < 8; i++)
        acked [i] = (uint8_t) ((uint64_t) 310 >> (56 - 8 * i));
    m_send_inline (d, req, acked, sizeof acked);
    reply = m_expect_ok (d, 311, SLUICE_CMD_READ, &h);
    cr_assert_eq (h.count, 2);
    cr_assert_not (h.flags & SLUICE_FLAG_INLINE);
    zmsg_first (reply);
    cr_assert (zframe_streq (zmsg_next (reply), "one"));
    cr_assert (zframe_streq (zmsg_next (reply), "two"));
    zmsg_destroy (&reply);
    cr_assert_eq (t_status ().unacked, 2, "the two chunks just read are not the only ones held");
}

T_TEST (buffer_malformed, inline_packed_write)
{
    zsock_t *d = m_setup ();
    const char *chunks [] = { "p", "qq" };
    uint8_t body [64];
    size_t size = m_pack (body, 2, chunks);
    sluice_header_t req = m_req (SLUICE_CMD_WRITE, 320), h;
    req.flags = SLUICE_FLAG_PACKED | SLUICE_FLAG_FINAL;
    req.count = 2;
    m_send_inline (d, req, body, size);
    zmsg_t *reply = m_expect_ok (d, 320, SLUICE_CMD_WRITE, &h);
    zmsg_destroy (&reply);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_EXPECT_CHUNK (t_fx.cli, "b");
    T_EXPECT_CHUNK (t_fx.cli, "p");
    T_EXPECT_CHUNK_F (t_fx.cli, "qq", true);
}

T_TEST (buffer_malformed, frames_after_an_inline_header)
{
    zsock_t *d = m_setup ();
    m_inline_replies = 0;
    uint8_t frame [SLUICE_HEADER_SIZE + 2];
    const void *data [2] = { frame, "yy" };
    size_t size [2] = { m_inline_frame (m_req (SLUICE_CMD_WRITE, 330), "zz", 2, frame), 2 };
    m_send_frames (d, 2, data, size);
    m_expect_error (d, SLUICE_EPROTO, 330, SLUICE_CMD_WRITE);
    cr_assert_eq (m_inline_replies, 1, "the error to an INLINE request came as frames");
    m_assert_intact (d);
}

T_TEST (buffer_malformed, inline_body_on_a_command_without_one)
{
    zsock_t *d = m_setup ();
    //  A header frame of exactly 20 bytes with INLINE carries an empty body frame
    m_send_inline (d, m_req (SLUICE_CMD_CLOSE, 340), "", 0);
    m_expect_error (d, SLUICE_EPROTO, 340, SLUICE_CMD_CLOSE);
    m_assert_intact (d);            //  not closed
}

T_TEST (buffer_malformed, inline_chunk_too_big)
{
    zsock_t *d = m_setup ();                      //  max chunk 16 bytes
    char chunk [17];
    memset (chunk, 'k', sizeof chunk);
    m_send_inline (d, m_req (SLUICE_CMD_WRITE, 350), chunk, sizeof chunk);
    m_expect_error (d, SLUICE_ETOOBIG, 350, SLUICE_CMD_WRITE);
    m_assert_intact (d);
}

T_TEST (buffer_malformed, an_undecodable_header_with_the_inline_bit_is_answered_with_frames)
{
    zsock_t *d = m_setup ();
    m_inline_replies = 0;
    //  19 bytes, flags INLINE: too short to hold a body; the error comes as frames
    uint8_t frame [SLUICE_HEADER_SIZE + 5];
    size_t whole = m_inline_frame (m_req (SLUICE_CMD_WRITE, 360), "body!", 5, frame);
    const void *data [1] = { frame };
    size_t size [1] = { SLUICE_HEADER_SIZE - 1 };
    m_send_frames (d, 1, data, size);
    m_expect_error (d, SLUICE_EPROTO, 360, M_ANY_COMMAND);
    //  Another version, with a body after its header: the reply cannot be in a form it knows
    frame [0] = SLUICE_PROTOCOL_VERSION + 1;
    size [0] = whole;
    m_send_frames (d, 1, data, size);
    m_expect_error (d, SLUICE_EVERSION, 360, M_ANY_COMMAND);
    cr_assert_eq (m_inline_replies, 0, "an undecodable request was answered inline");
    m_assert_intact (d);
}

T_TEST (buffer_malformed, inline_replies_at_the_limit_when_parked_and_at_the_end)
{
    t_start_opts (4, 4096, 0, false);
    zsock_t *d = m_dealer ();
    m_inline_replies = 0;
    //  Parked on the empty buffer, answered inline when a chunk of exactly the limit comes
    sluice_header_t req = m_req (SLUICE_CMD_READ, 370), h;
    req.flags = SLUICE_FLAG_ACK;
    uint8_t none [8] = { 0 };
    m_send_inline (d, req, none, sizeof none);
    T_WAIT_PARKED_READERS (1);
    static char limit [SLUICE_INLINE_MAX];
    memset (limit, 'l', sizeof limit);
    cr_assert_eq (sluice_stream_write (t_fx.cli, limit, sizeof limit, false), SLUICE_OK);
    zmsg_t *reply = m_expect_ok (d, 370, SLUICE_CMD_READ, &h);
    cr_assert_eq (h.flags & (SLUICE_FLAG_INLINE | SLUICE_FLAG_PARKED),
                  SLUICE_FLAG_INLINE | SLUICE_FLAG_PARKED, "flags 0x%02x", h.flags);
    zmsg_first (reply);
    cr_assert_eq (zframe_size (zmsg_next (reply)), SLUICE_INLINE_MAX);
    zmsg_destroy (&reply);

    //  End of stream: one empty frame, inline
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    req = m_req (SLUICE_CMD_READ, 371);
    req.flags = SLUICE_FLAG_ACK;
    uint8_t acked [8];
    for (int i = 0; i < 8; i++)
        acked [i] = (uint8_t) ((uint64_t) 370 >> (56 - 8 * i));
    m_send_inline (d, req, acked, sizeof acked);
    reply = m_expect_ok (d, 371, SLUICE_CMD_READ, &h);
    cr_assert_eq (h.flags & (SLUICE_FLAG_INLINE | SLUICE_FLAG_EOS | SLUICE_FLAG_FINAL),
                  SLUICE_FLAG_INLINE | SLUICE_FLAG_EOS | SLUICE_FLAG_FINAL, "flags 0x%02x",
                  h.flags);
    zmsg_first (reply);
    cr_assert_eq (zframe_size (zmsg_next (reply)), 0);
    zmsg_destroy (&reply);
    cr_assert_eq (m_inline_replies, 2);
}
