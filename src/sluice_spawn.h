/*  sluice_spawn.h - an external program on pipes, for exec stages and the exec model.
    Internal.
*/
#ifndef SLUICE_SPAWN_H_INCLUDED
#define SLUICE_SPAWN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

//  The end of a command's stderr kept for its error report
#define SLUICE_STDERR_TAIL  256

//  Start `sh -c command` in a process group of its own (so killing -pid ends everything it
//  started), with default signal handling, its stdio on pipes: fds [0] its stdin (ours to
//  write), [1] its stdout and [2] its stderr (ours to read), all non-blocking. Returns its pid,
//  or -1 (errno set).
pid_t
    sluice_spawn (const char *command, int fds [3]);

//  Read what the command wrote to stderr, keeping the last SLUICE_STDERR_TAIL bytes in tail
//  (*size of them); *open becomes false at its end.
void
    sluice_stderr_take (int fd, char *tail, size_t *size, bool *open);

//  The tail as a reason: trailing newlines removed, NUL-terminated (tail has room
//  for SLUICE_STDERR_TAIL + 1 bytes).
const char *
    sluice_stderr_text (char *tail, size_t size);

#endif
