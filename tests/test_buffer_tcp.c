/*  test_buffer_tcp.c - the core buffer suite of buffer_cases.h over tcp://127.0.0.1.

    Each buffer binds tcp://127.0.0.1:0 (a free port chosen by the kernel; czmq's :* counts up
    from 49152 and may hand a killed buffer's port, which its clients still reconnect to, to
    another test) and the clients connect to the port sluice_buffer_endpoint () reports.
*/
#define T_TCP 1
#define CASES_SUITE buffer_tcp
#include "buffer_cases.h"
