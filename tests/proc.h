/*  proc.h - the process helpers of the multi-process tests (test_cli, test_cli_security,
    test_faults, test_multihost); header only, static inline, the state in one static struct
    (Criterion runs each test in its own process).

    p_init finds bin/sluice of the same build from /proc/self/exe (build/<build>/tests/<test>),
    or $SLUICE_CLI. p_spawn and p_start run children with stdin from a file, a descriptor or
    /dev/null, stdout to a file, /dev/null or a pipe (p_line; a server's "listening on
    ENDPOINT" line: p_listening), stderr to a file or /dev/null. Every child dies with the test
    process (PR_SET_PDEATHSIG) and is killed and reaped by p_fini, stopped or not. Waits are on
    a pidfd or poll, bounded by p_init's wait_ms: a liveness limit, never a timing assertion.
    The test process forks only to exec at once (it has ZeroMQ sockets and threads).
    p_tmpdir and p_path: an optional temporary directory whose files p_fini removes.
*/
#ifndef SLUICE_TEST_PROC_H_INCLUDED
#define SLUICE_TEST_PROC_H_INCLUDED

#ifndef _GNU_SOURCE
#define _GNU_SOURCE         //  pipe2; include this header first (or after common.h)
#endif

#include <criterion/criterion.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define P_MAX_CHILDREN  24
#define P_MAX_FILES     32
#define P_MAX_ARGS      32      //  argv entries of p_start_io, NULL included

typedef struct {
    pid_t pid;
    int status;                    //  exit code, or 128 + signal
    bool reaped;
    int out;                       //  read end of its stdout pipe, or -1
} p_child_t;

typedef struct {
    char exe_dir [PATH_MAX];       //  this test binary's directory, build/<build>/tests
    char cli [PATH_MAX + 32];      //  the sluice command
    int wait_ms;                   //  bound of p_wait and p_line
    p_child_t children [P_MAX_CHILDREN];
    size_t nchildren;
    size_t max_children;           //  the suite's own limit
    char dir [PATH_MAX];           //  p_tmpdir's directory, "" when none
    char *files [P_MAX_FILES];
    size_t nfiles;
    size_t max_files;
} p_fixture_t;

static p_fixture_t p_fx;

//  `sluice ARGS...` as an argv for p_spawn
#define P_SLUICE(...) ((const char *const []) { p_fx.cli, __VA_ARGS__, NULL })
//  ARGS... alone, NULL-terminated (for p_start and the like, which put the program first)
#define P_ARGS(...) ((const char *const []) { __VA_ARGS__, NULL })

// ---------------------------------------------------------------------------------------------
//  Programs

//  The program at $env when set, else dir/relative; it must be executable.
static inline void
p_program (char *out, size_t size, const char *env, const char *dir, const char *relative)
{
    const char *given = getenv (env);
    if (given && *given)
        snprintf (out, size, "%s", given);
    else
        snprintf (out, size, "%s/%s", dir, relative);
    cr_assert (access (out, X_OK) == 0, "no program at %s (make build, or set %s)", out, env);
}

//  For the suite's .init: at most max_children children, waits bounded by wait_ms. Finds this
//  binary's directory and the sluice command.
static inline void
p_init (size_t max_children, int wait_ms)
{
    memset (&p_fx, 0, sizeof p_fx);
    cr_assert_leq (max_children, P_MAX_CHILDREN);
    p_fx.max_children = max_children;
    p_fx.wait_ms = wait_ms;
    char *exe = p_fx.exe_dir;
    ssize_t size = readlink ("/proc/self/exe", exe, sizeof p_fx.exe_dir - 1);
    cr_assert_gt (size, 0, "readlink /proc/self/exe: %s", strerror (errno));
    exe [size] = 0;
    char *slash = strrchr (exe, '/');       //  .../build/<build>/tests/<this test>
    cr_assert_not_null (slash);
    *slash = 0;
    p_program (p_fx.cli, sizeof p_fx.cli, "SLUICE_CLI", exe, "../bin/sluice");
}

//  argv = { program, ARGS..., NULL }, at most size entries.
static inline void
p_argv (const char **argv, size_t size, const char *program, const char *const *args)
{
    size_t argc = 0;
    argv [argc++] = program;
    for (; *args && argc + 1 < size; args++)
        argv [argc++] = *args;
    argv [argc] = NULL;
}

// ---------------------------------------------------------------------------------------------
//  Children

//  Start argv [0] with argv (NULL-terminated). stdin: in_fd when >= 0, else the file `in`
//  (NULL: /dev/null); stdout: a pipe when out_pipe (read it with p_line), else the file
//  `out` (NULL: /dev/null); stderr: the file `err` (NULL: /dev/null). The child's index.
static inline size_t
p_spawn (const char *const *argv, const char *in, int in_fd, const char *out, bool out_pipe,
         const char *err)
{
    cr_assert_lt (p_fx.nchildren, p_fx.max_children);
    int pipe_fds [2] = { -1, -1 };
    if (out_pipe)
        cr_assert_eq (pipe2 (pipe_fds, O_CLOEXEC), 0);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    cr_assert_neq (pid, -1, "fork: %s", strerror (errno));
    if (pid == 0) {
        //  Only async-signal-safe calls from here to exec: this process has threads
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        int fd_in = in_fd >= 0 ? in_fd : open (in ? in : "/dev/null", O_RDONLY);
        int fd_out = out_pipe ? pipe_fds [1]
                   : open (out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fd_err = open (err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd_in < 0 || fd_out < 0 || fd_err < 0
        ||  dup2 (fd_in, 0) < 0 || dup2 (fd_out, 1) < 0 || dup2 (fd_err, 2) < 0)
            _exit (127);
        //  A clean signal state: the test process may block or catch some
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        signal (SIGPIPE, SIG_DFL);
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    if (out_pipe)
        close (pipe_fds [1]);
    p_child_t *child = &p_fx.children [p_fx.nchildren];
    child->pid = pid;
    child->reaped = false;
    child->out = pipe_fds [0];
    return p_fx.nchildren++;
}

//  Wait for the child to exit, on a pidfd, at most bound_ms: true with *status (exit code, or
//  128 + signal) once it has; false when it is still running.
static inline bool
p_try_wait (size_t index, int bound_ms, int *status)
{
    p_child_t *child = &p_fx.children [index];
    if (!child->reaped) {
        int pidfd = (int) syscall (SYS_pidfd_open, child->pid, 0);
        cr_assert_neq (pidfd, -1, "pidfd_open: %s", strerror (errno));
        struct pollfd item = { pidfd, POLLIN, 0 };
        int rc;
        do
            rc = poll (&item, 1, bound_ms);
        while (rc == -1 && errno == EINTR);
        close (pidfd);
        if (rc != 1)
            return false;
        int raw;
        cr_assert_eq (waitpid (child->pid, &raw, 0), child->pid);
        child->reaped = true;
        child->status = WIFEXITED (raw) ? WEXITSTATUS (raw) : 128 + WTERMSIG (raw);
    }
    *status = child->status;
    return true;
}

//  The child's status once it has exited; fails when it runs longer than bound_ms.
static inline int
p_wait_within (size_t index, int bound_ms)
{
    int status;
    cr_assert (p_try_wait (index, bound_ms, &status),
               "child %zu (pid %d) did not exit within %d ms", index,
               (int) p_fx.children [index].pid, bound_ms);
    return status;
}

//  The same, bounded by wait_ms.
static inline int
p_wait (size_t index)
{
    return p_wait_within (index, p_fx.wait_ms);
}

//  One line from the child's stdout pipe (newline removed), bounded by wait_ms.
static inline void
p_line (size_t index, char *line, size_t size)
{
    p_child_t *child = &p_fx.children [index];
    size_t used = 0;
    line [0] = 0;
    while (true) {
        struct pollfd item = { child->out, POLLIN, 0 };
        int rc = poll (&item, 1, p_fx.wait_ms);
        cr_assert_eq (rc, 1, "no line from child %zu within %d ms (got '%.*s')", index,
                      p_fx.wait_ms, (int) used, line);
        char byte;
        ssize_t got = read (child->out, &byte, 1);
        cr_assert_eq (got, 1, "child %zu closed its stdout before a whole line ('%.*s')", index,
                      (int) used, line);
        if (byte == '\n')
            break;
        cr_assert_lt (used + 1, size);
        line [used++] = byte;
    }
    line [used] = 0;
}

//  A server's first line: "listening on ENDPOINT", ENDPOINT starting with prefix (such as
//  "tcp://127.0.0.1:") and its port resolved (not 0, no '*'). ENDPOINT into endpoint.
static inline void
p_listening (size_t index, const char *prefix, char *endpoint, size_t size)
{
    char line [256];
    p_line (index, line, sizeof line);
    const char *bound = line + 13;          //  after "listening on "
    size_t prefix_size = strlen (prefix);
    cr_assert (strncmp (line, "listening on ", 13) == 0
               && strncmp (bound, prefix, prefix_size) == 0, "first line: '%s'", line);
    cr_assert (strcmp (bound + prefix_size, "0") != 0 && !strchr (bound, '*'),
               "port not resolved: %s", bound);
    cr_assert_lt (strlen (bound), size);
    snprintf (endpoint, size, "%s", bound);
}

//  `sluice ARGS...` (ARGS NULL-terminated; see p_spawn for the rest).
static inline size_t
p_start_io (const char *const *args, const char *in, int in_fd, const char *out, bool out_pipe,
            const char *err)
{
    const char *argv [P_MAX_ARGS];
    p_argv (argv, P_MAX_ARGS, p_fx.cli, args);
    return p_spawn (argv, in, in_fd, out, out_pipe, err);
}

//  `sluice ARGS...` with stdin, stdout and stderr from and to files (NULL: /dev/null).
static inline size_t
p_start (const char *const *args, const char *in, const char *out, const char *err)
{
    return p_start_io (args, in, -1, out, false, err);
}

//  The same, run to completion: its exit status.
static inline int
p_run (const char *const *args, const char *in, const char *out, const char *err)
{
    return p_wait (p_start (args, in, out, err));
}

//  SIGKILL every child still running (stopped ones too) and reap it.
static inline void
p_kill_all (void)
{
    for (size_t i = 0; i < p_fx.nchildren; i++) {
        p_child_t *child = &p_fx.children [i];
        if (!child->reaped) {
            kill (child->pid, SIGKILL);         //  ends a stopped process too
            waitpid (child->pid, NULL, 0);
            child->reaped = true;
        }
    }
}

// ---------------------------------------------------------------------------------------------
//  Files

//  A temporary directory, /tmp/sluice-test-NAME-XXXXXX, for at most max_files files.
static inline void
p_tmpdir (const char *name, size_t max_files)
{
    cr_assert_leq (max_files, P_MAX_FILES);
    p_fx.max_files = max_files;
    snprintf (p_fx.dir, sizeof p_fx.dir, "/tmp/sluice-test-%s-XXXXXX", name);
    cr_assert_not_null (mkdtemp (p_fx.dir), "mkdtemp: %s", strerror (errno));
}

//  A path in the temporary directory (the file is removed in p_fini).
static inline const char *
p_path (const char *name)
{
    cr_assert_lt (p_fx.nfiles, p_fx.max_files);
    char *path = zsys_sprintf ("%s/%s", p_fx.dir, name);
    p_fx.files [p_fx.nfiles++] = path;
    return path;
}

static inline void
p_write_file (const char *path, const void *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    cr_assert_not_null (file, "%s: %s", path, strerror (errno));
    cr_assert_eq (fwrite (data, 1, size, file), size);
    cr_assert_eq (fclose (file), 0);
}

//  The whole file, NUL-terminated (the caller frees it); its length in *size unless NULL.
static inline char *
p_read_file (const char *path, size_t *size)
{
    zchunk_t *chunk = zchunk_slurp (path, 0);
    cr_assert_not_null (chunk, "cannot read %s", path);
    size_t length = zchunk_size (chunk);
    char *data = (char *) malloc (length + 1);
    memcpy (data, zchunk_data (chunk), length);
    data [length] = 0;
    zchunk_destroy (&chunk);
    if (size)
        *size = length;
    return data;
}

static inline void
p_expect_contains (const char *path, const char *needle)
{
    char *text = p_read_file (path, NULL);
    cr_expect (strstr (text, needle) != NULL, "%s does not say '%s'; it says:\n%s", path, needle,
               text);
    free (text);
}

// ---------------------------------------------------------------------------------------------

//  For the suite's .fini (idempotent): kill and reap the children, close their pipes, remove
//  the temporary files and directory.
static inline void
p_fini (void)
{
    p_kill_all ();
    for (size_t i = 0; i < p_fx.nchildren; i++)
        if (p_fx.children [i].out != -1)
            close (p_fx.children [i].out);
    p_fx.nchildren = 0;
    for (size_t i = 0; i < p_fx.nfiles; i++) {
        unlink (p_fx.files [i]);
        free (p_fx.files [i]);
    }
    p_fx.nfiles = 0;
    if (*p_fx.dir)
        rmdir (p_fx.dir);
    p_fx.dir [0] = 0;
}

#endif
