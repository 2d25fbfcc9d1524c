/*  sluice_model_exec.c - an external program as the model (see sluice_model.h).

    Each request runs the command with `sh -c` in a process group of its own: the payload goes
    to its stdin, its stdout is the response (or the stream's tokens, one per read), its exit
    status and the end of its stderr the outcome. A stream's backpressure is not reading the
    pipe: while the window is full sluice_model_emit blocks, the pipe fills and the command
    blocks writing. A cancel (or the server's end) kills the process group.
*/
#include "sluice_model_ctx.h"
#include "sluice_spawn.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

//  What a run of the command produced
typedef struct {
    bool stream;                  //  emit stdout as tokens, else collect it
    char *output;                 //  collected stdout (malloc'd)
    size_t size, capacity;
} s_run_t;

static sluice_err_t
s_collect (s_run_t *run, const char *data, size_t size)
{
    if (run->size + size + 1 > run->capacity) {
        size_t capacity = (run->size + size + 1) * 2;
        char *grown = (char *) realloc (run->output, capacity);
        if (!grown)
            return SLUICE_ENOMEM;
        run->output = grown;
        run->capacity = capacity;
    }
    memcpy (run->output + run->size, data, size);
    run->size += size;
    run->output [run->size] = 0;
    return SLUICE_OK;
}

//  Wait for the command's exit; kill its group first when it must go. Returns its wait status.
static int
s_reap (sluice_model_ctx_t *ctx, pid_t pid, bool kill_it)
{
    if (kill_it)
        kill (-pid, SIGKILL);
    int status = 0;
    //  It closed its output but may run on: wait on a pidfd, responsive to a cancel (without
    //  pidfds, looking again every 50 ms)
    int pidfd = kill_it ? -1 : (int) syscall (SYS_pidfd_open, pid, 0);
    while (waitpid (pid, &status, kill_it ? 0 : WNOHANG) == 0) {
        zmq_pollitem_t item = { NULL, pidfd, ZMQ_POLLIN, 0 };
        if (sluice_model_ctx_poll (ctx, &item, pidfd >= 0 ? 1 : 0, pidfd >= 0 ? -1 : 50) < 0) {
            kill (-pid, SIGKILL);
            kill_it = true;
        }
    }
    if (pidfd >= 0)
        close (pidfd);
    return status;
}

//  Run the command on the payload. On failure *reason is a malloc'd text.
static sluice_err_t
s_run (sluice_model_ctx_t *ctx, const char *command, const void *payload, size_t size,
       s_run_t *run, char **reason)
{
    //  A command that exits without reading all its input must not kill us with SIGPIPE:
    //  this is a worker thread of the server's, and its writes fail with EPIPE instead
    sigset_t pipe_set;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &pipe_set, NULL);
    int fds [3];
    pid_t pid = sluice_spawn (command, fds);
    if (pid < 0) {
        *reason = zsys_sprintf ("cannot start the command: %s", strerror (errno));
        return SLUICE_EINTERNAL;
    }
    size_t fed = 0;
    if (size == 0) {
        close (fds [0]);
        fds [0] = -1;
    }
    char tail [SLUICE_STDERR_TAIL + 1];
    size_t tail_size = 0;
    bool out_open = true, err_open = true;
    sluice_err_t rc = SLUICE_OK;
    while (rc == SLUICE_OK && (out_open || err_open)) {
        zmq_pollitem_t items [3] = {
            { NULL, fds [0], ZMQ_POLLOUT, 0 },
            { NULL, out_open ? fds [1] : -1, ZMQ_POLLIN, 0 },
            { NULL, err_open ? fds [2] : -1, ZMQ_POLLIN, 0 },
        };
        if (sluice_model_ctx_poll (ctx, items, 3, -1) < 0) {
            rc = SLUICE_ECLOSED;
            break;
        }
        if (fds [0] >= 0 && (items [0].revents & (ZMQ_POLLOUT | ZMQ_POLLERR))) {
            ssize_t wrote = write (fds [0], (const char *) payload + fed, size - fed);
            if (wrote > 0)
                fed += (size_t) wrote;
            //  All fed, or the command does not read any more (EPIPE): its input ends
            if (fed == size || (wrote < 0 && errno != EAGAIN && errno != EINTR)) {
                close (fds [0]);
                fds [0] = -1;
            }
        }
        if (items [2].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            sluice_stderr_take (fds [2], tail, &tail_size, &err_open);
        if (!(items [1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            continue;
        char data [4096];
        ssize_t got = read (fds [1], data, sizeof data);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got <= 0)
            out_open = false;
        else
        if (run->stream)
            //  Blocks while the stream's window is full: then the command blocks writing
            rc = sluice_model_emit (ctx, data, (size_t) got);
        else
            rc = s_collect (run, data, (size_t) got);
    }
    for (int index = 0; index < 3; index++)
        if (fds [index] >= 0)
            close (fds [index]);
    int status = s_reap (ctx, pid, rc != SLUICE_OK);
    if (rc != SLUICE_OK) {
        *reason = strdup (rc == SLUICE_ENOMEM ? "out of memory" : "cancelled");
        return rc;
    }
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return SLUICE_OK;
    const char *text = sluice_stderr_text (tail, tail_size);
    if (WIFSIGNALED (status))
        *reason = zsys_sprintf ("the command was killed by signal %d%s%s", WTERMSIG (status),
                                *text ? ": " : "", text);
    else
        *reason = zsys_sprintf ("the command exited with status %d%s%s",
                                WIFEXITED (status) ? WEXITSTATUS (status) : -1,
                                *text ? ": " : "", text);
    return SLUICE_EINTERNAL;
}

sluice_err_t
sluice_model_exec_load (sluice_model_ctx_t *ctx, void *config, void **model,
                        char *reason, size_t reason_size)
{
    const sluice_model_exec_t *exec = (const sluice_model_exec_t *) config;
    *model = NULL;
    if (!exec->load_command)
        return SLUICE_OK;
    s_run_t run = { .stream = false };
    char *why = NULL;
    sluice_err_t rc = s_run (ctx, exec->load_command, NULL, 0, &run, &why);
    free (run.output);
    if (rc != SLUICE_OK) {
        snprintf (reason, reason_size, "load command: %s", why ? why : sluice_strerror (rc));
        free (why);
        return rc == SLUICE_ECLOSED ? SLUICE_ESHUTDOWN : SLUICE_ELOADFAIL;
    }
    return SLUICE_OK;
}

sluice_err_t
sluice_model_exec_infer (sluice_model_ctx_t *ctx, void *config, void *model,
                         const void *payload, size_t size, char **response, size_t *response_size)
{
    const sluice_model_exec_t *exec = (const sluice_model_exec_t *) config;
    s_run_t run = { .stream = false };
    char *why = NULL;
    sluice_err_t rc = s_run (ctx, exec->command, payload, size, &run, &why);
    if (rc != SLUICE_OK) {
        free (run.output);
        *response = why;
        *response_size = why ? strlen (why) : 0;
        return rc;
    }
    *response = run.output ? run.output : strdup ("");
    *response_size = run.size;
    return *response ? SLUICE_OK : SLUICE_ENOMEM;
}

sluice_err_t
sluice_model_exec_stream (sluice_model_ctx_t *ctx, void *config, void *model,
                          const void *payload, size_t size, char **reason)
{
    const sluice_model_exec_t *exec = (const sluice_model_exec_t *) config;
    s_run_t run = { .stream = true };
    return s_run (ctx, exec->command, payload, size, &run, reason);
}
