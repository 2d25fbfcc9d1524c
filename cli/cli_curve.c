/*  cli_curve.c - `sluice keygen`, and the CURVE settings of the other commands.

    The library refuses settings it cannot honour (sluice_curve.h), but only with SLUICE_EINVAL
    and a log line. The commands check the same things first, so that the user gets a message
    naming the option or pipeline key at fault and exit 2 before anything starts.
*/
#include "cli.h"
#include <sys/stat.h>

bool
sluice_cli_curve_option (sluice_cli_curve_t *self, int option, const char *arg)
{
    switch (option) {
        case SLUICE_CLI_OPT_CURVE_CERT:         self->cert = arg; return true;
        case SLUICE_CLI_OPT_CURVE_ALLOW:        self->allow = arg; return true;
        case SLUICE_CLI_OPT_CURVE_ENCRYPT_ONLY: self->encrypt_only = true; return true;
        case SLUICE_CLI_OPT_CURVE_SERVER_KEY:   self->server_key = arg; return true;
        default:                                return false;
    }
}

//  The settings as given, for the library's checks.
static sluice_curve_t
s_given (const sluice_cli_curve_t *self)
{
    return (sluice_curve_t) { .cert = self->cert, .allow = self->allow,
                              .encrypt_only = self->encrypt_only,
                              .server_key = self->server_key };
}

bool
sluice_cli_curve_server_check (sluice_cli_curve_t *self, const char *dashes,
                               char *why, size_t why_size)
{
    sluice_curve_t given = s_given (self);
    return sluice_curve_check_server (&given, dashes, &self->checked, why, why_size);
}

bool
sluice_cli_curve_client_check (sluice_cli_curve_t *self, const char *dashes,
                               char *why, size_t why_size)
{
    sluice_curve_t given = s_given (self);
    return sluice_curve_check_client (&given, dashes, &self->checked, why, why_size);
}

const sluice_curve_t *
sluice_cli_curve_get (sluice_cli_curve_t *self)
{
    return sluice_curve_checked_get (&self->checked);
}

int
sluice_cli_curve_server (const char *command, sluice_cli_curve_t *self)
{
    char why [512];
    if (sluice_cli_curve_server_check (self, "--", why, sizeof why))
        return SLUICE_EXIT_OK;
    return sluice_cli_usage_error (command, "%s", why);
}

int
sluice_cli_curve_client (const char *command, sluice_cli_curve_t *self)
{
    char why [512];
    if (sluice_cli_curve_client_check (self, "--", why, sizeof why))
        return SLUICE_EXIT_OK;
    return sluice_cli_usage_error (command, "%s", why);
}

void
sluice_cli_curve_hint (const char *command, const sluice_curve_t *curve, sluice_err_t err)
{
    if (!curve || err != SLUICE_ETRANSPORT)
        return;
    fprintf (stderr, "sluice %s: a server that refuses a CURVE client does not answer it: check "
             "that --curve-server-key is the server's key and that this client's public "
             "certificate is in the server's --curve-allow directory\n", command);
}

// ---------------------------------------------------------------------------------------------
//  keygen

static void
s_keygen_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice keygen [--force] PATH\n"
        "Write a new CURVE certificate pair: PATH, the public certificate, and PATH_secret,\n"
        "which holds the secret key too (readable by its owner only: keep it private). Print\n"
        "the public key (40 Z85 characters) on stdout.\n"
        "  A server takes its PATH_secret as --curve-cert; its clients take PATH (or the key)\n"
        "  as --curve-server-key.\n"
        "  A client takes its PATH_secret as --curve-cert; its PATH goes into the server's\n"
        "  --curve-allow directory.\n"
        "  -f, --force   overwrite PATH and PATH_secret when they exist\n"
        "  -h, --help\n"
        "Exit: 0 written, 1 error (a file exists and no --force, or cannot be written), 2 usage.\n");
}

int
sluice_cli_keygen (int argc, char **argv)
{
    static const struct option options [] = {
        { "force", no_argument, NULL, 'f' },
        { "help",  no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    bool force = false;
    int option;
    while ((option = getopt_long (argc, argv, "fh", options, NULL)) != -1) {
        switch (option) {
            case 'f': force = true; break;
            case 'h': s_keygen_usage (stdout); return SLUICE_EXIT_OK;
            default:  return sluice_cli_bad_option ("keygen", argc, argv);
        }
    }
    if (argc - optind != 1 || !*argv [optind])
        return sluice_cli_usage_error ("keygen", "one PATH expected");
    const char *path = argv [optind];
    char *secret = zsys_sprintf ("%s_secret", path);
    if (!secret)
        return sluice_cli_fail ("keygen", SLUICE_ENOMEM, NULL, "%s", path);
    int exit_code = SLUICE_EXIT_OK;
    const char *files [2] = { path, secret };
    for (int index = 0; index < 2 && exit_code == SLUICE_EXIT_OK; index++) {
        struct stat info;
        if (lstat (files [index], &info) != 0)
            continue;
        if (!force) {
            fprintf (stderr, "sluice keygen: %s exists: not overwritten (--force replaces it)\n",
                     files [index]);
            exit_code = SLUICE_EXIT_ERROR;
        }
        else
        //  Removed rather than truncated: a new secret file is created private (0600), an
        //  existing one would keep its mode
        if (unlink (files [index]) != 0) {
            fprintf (stderr, "sluice keygen: cannot replace %s: %s\n", files [index],
                     strerror (errno));
            exit_code = SLUICE_EXIT_ERROR;
        }
    }
    if (exit_code == SLUICE_EXIT_OK) {
        errno = 0;
        sluice_err_t err = sluice_curve_keygen (path);
        char public_key [41], why [512];
        if (err != SLUICE_OK) {
            fprintf (stderr, "sluice keygen: cannot write %s and %s: %s\n", path, secret,
                     errno ? strerror (errno) : sluice_strerror (err));
            exit_code = SLUICE_EXIT_ERROR;
        }
        else
        if (!sluice_curve_cert_public_key (path, public_key, why, sizeof why)) {
            fprintf (stderr, "sluice keygen: %s\n", why);
            exit_code = SLUICE_EXIT_ERROR;
        }
        else {
            printf ("%s\n", public_key);
            if (fflush (stdout) != 0) {
                fprintf (stderr, "sluice keygen: writing stdout: %s\n", strerror (errno));
                exit_code = SLUICE_EXIT_ERROR;
            }
        }
    }
    zstr_free (&secret);
    return exit_code;
}
