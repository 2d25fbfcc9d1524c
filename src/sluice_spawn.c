/*  sluice_spawn.c - an external program on pipes (see sluice_spawn.h).
*/
#define _GNU_SOURCE         //  pipe2
#include "sluice_spawn.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

pid_t
sluice_spawn (const char *command, int fds [3])
{
    int pipes [3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
    pid_t pid = -1;
    bool ready = true;
    for (int index = 0; index < 3; index++)
        ready = ready && pipe2 (pipes [index], O_CLOEXEC) == 0;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init (&actions);
    posix_spawnattr_init (&attr);
    if (ready) {
        posix_spawn_file_actions_adddup2 (&actions, pipes [0][0], 0);
        posix_spawn_file_actions_adddup2 (&actions, pipes [1][1], 1);
        posix_spawn_file_actions_adddup2 (&actions, pipes [2][1], 2);
        //  Its own group (stopping the stage kills the whole pipeline it may start), default
        //  signal handling and no signal blocked, whatever ours are
        sigset_t none, defaults;
        sigemptyset (&none);
        sigemptyset (&defaults);
        sigaddset (&defaults, SIGPIPE);
        sigaddset (&defaults, SIGINT);
        sigaddset (&defaults, SIGTERM);
        posix_spawnattr_setpgroup (&attr, 0);
        posix_spawnattr_setsigmask (&attr, &none);
        posix_spawnattr_setsigdefault (&attr, &defaults);
        posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK
                                         | POSIX_SPAWN_SETSIGDEF);
        char *argv [] = { (char *) "sh", (char *) "-c", (char *) command, NULL };
        if (posix_spawn (&pid, "/bin/sh", &actions, &attr, argv, environ) != 0)
            pid = -1;
    }
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    //  Ours: the write end of its stdin, the read ends of the others
    for (int index = 0; index < 3; index++) {
        int ours = pipes [index][index == 0 ? 1 : 0];
        int theirs = pipes [index][index == 0 ? 0 : 1];
        if (theirs >= 0)
            close (theirs);
        if (pid < 0 && ours >= 0)
            close (ours);
        fds [index] = pid < 0 ? -1 : ours;
        if (pid >= 0)
            fcntl (ours, F_SETFL, fcntl (ours, F_GETFL) | O_NONBLOCK);
    }
    return pid;
}

void
sluice_stderr_take (int fd, char *tail, size_t *size, bool *open)
{
    char data [4096];
    ssize_t got = read (fd, data, sizeof data);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        *open = false;
        return;
    }
    size_t count = (size_t) got;
    if (count >= SLUICE_STDERR_TAIL) {
        memcpy (tail, data + count - SLUICE_STDERR_TAIL, SLUICE_STDERR_TAIL);
        *size = SLUICE_STDERR_TAIL;
        return;
    }
    if (*size + count > SLUICE_STDERR_TAIL) {
        size_t drop = *size + count - SLUICE_STDERR_TAIL;
        memmove (tail, tail + drop, *size - drop);
        *size -= drop;
    }
    memcpy (tail + *size, data, count);
    *size += count;
}

const char *
sluice_stderr_text (char *tail, size_t size)
{
    tail [size] = 0;
    while (size && (tail [size - 1] == '\n' || tail [size - 1] == '\r'))
        tail [--size] = 0;
    return tail;
}
