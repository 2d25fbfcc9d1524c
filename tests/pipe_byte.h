/*  pipe_byte.h - one byte into a pipe: a gate a test opens, an event a test model reports.
    Shared by the model-server test suites. */
#ifndef T_PIPE_BYTE_H_INCLUDED
#define T_PIPE_BYTE_H_INCLUDED

#include <errno.h>
#include <unistd.h>

static inline void
t_write_byte (int fd)
{
    ssize_t rc;
    do
        rc = write (fd, "x", 1);
    while (rc == -1 && errno == EINTR);
}

#endif
