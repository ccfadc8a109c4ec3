/*
 * embed.c: a C program that embeds the plughost host through its C library.
 *
 *     embed PLUGINS_DIR TEXT_FILE
 *
 * It makes a host whose plugins' log records (warnings and errors) go to standard error, loads
 * every plugin of PLUGINS_DIR (refused libraries are reported on standard error), lists the
 * plugins and their commands, subscribes to the event `wordfreq.totals`, runs
 * `wordfreq --top 5 TEXT_FILE` (its output goes to standard output, exactly as
 * `plughost run wordfreq --top 5 TEXT_FILE` prints it), shows a failing command's message,
 * publishes an event of its own that the `journal` plugin records, and frees everything.
 *
 * Build (from the workspace root, after `cargo build --release`):
 *
 *     cc -std=c11 -Wall -Wextra -Wpedantic -Werror -I plugin-api/include -I host/capi/include \
 *         examples/c/embed.c -L target/release -lplughost_host -Wl,-rpath,target/release -o embed
 *     ./embed target/release tests/data/udhr-article-1.txt
 *
 * tests/tests/embed_c.rs compiles it, compares its output with plughost's and runs it under
 * valgrind (no error, nothing definitely lost).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plughost_host.h"

/* A view of a NUL-terminated C string (the library takes (pointer, length) views). */
static PhStr str(const char *s) {
    PhStr view;
    view.ptr = (const uint8_t *)s;
    view.len = strlen(s);
    return view;
}

/* The same, as bytes: paths are the OS's bytes. */
static PhBytes bytes(const char *s) {
    PhBytes view;
    view.ptr = (const uint8_t *)s;
    view.len = strlen(s);
    return view;
}

/* Prints a view: "%.*s" takes an int length. */
#define VIEW(v) (int)(v).len, (const char *)(v).ptr

/* Log records of the plugins (any thread). */
static void on_log(void *user_data, uint32_t level, PhStr plugin, PhStr target, PhStr message) {
    (void)user_data;
    (void)target;
    fprintf(stderr, "[%s %.*s] %.*s\n", level <= PH_LOG_LEVEL_ERROR ? "error" : "warn",
            VIEW(plugin), VIEW(message));
}

/* Refused libraries: one line each. */
static void on_refused(void *user_data, PhStr path, PhStr reason) {
    (void)user_data;
    fprintf(stderr, "refused: %.*s: %.*s\n", VIEW(path), VIEW(reason));
}

/* A command's output, piece by piece: to standard output. Returns false to stop it. */
static bool on_output(void *user_data, PhBytes piece) {
    (void)user_data;
    return fwrite(piece.ptr, 1, piece.len, stdout) == piece.len;
}

/* The message of a failed call. */
static void on_error(void *user_data, PhResultCode code, PhStr message) {
    const char *what = (const char *)user_data;
    PhStr name = ph_host_result_message(code);
    fprintf(stderr, "%s failed (%.*s): %.*s\n", what, VIEW(name), VIEW(message));
}

/* Enumerations, EnumWindows style: true for the next item, false to stop. */
static bool on_command(void *user_data, const PhCommandInfo *info) {
    (void)user_data;
    printf("  %.*s%s%.*s\n", VIEW(info->name), info->usage.len > 0 ? " " : "", VIEW(info->usage));
    return true;
}

static bool on_plugin(void *user_data, const PhPluginInfo *info) {
    const PhHost *host = (const PhHost *)user_data;
    printf("%.*s %.*s (ABI %u.%u)\n", VIEW(info->name), VIEW(info->version),
           (unsigned)info->abi_major, (unsigned)info->abi_minor);
    /* A [thread-safe] call from inside a callback: the plugin's commands. */
    ph_host_enumerate_commands(host, info->name, on_command, NULL);
    return true;
}

/* The state of the subscription: allocated here, freed by its destroy. */
struct totals {
    int events;
    char last[256];
};

/* Runs on the publisher's thread (here the thread running wordfreq). */
static PhResultCode on_totals(void *user_data, PhStr topic, PhBytes payload) {
    struct totals *totals = (struct totals *)user_data;
    size_t n = payload.len < sizeof totals->last - 1 ? payload.len : sizeof totals->last - 1;
    (void)topic;
    if (n > 0) {
        memcpy(totals->last, payload.ptr, n);
    }
    totals->last[n] = '\0';
    totals->events++;
    return PH_RESULT_OK;
}

/* Called exactly once, when the subscription has ended and no dispatch uses it. */
static void free_totals(void *user_data) {
    struct totals *totals = (struct totals *)user_data;
    fprintf(stderr, "subscription ended after %d event(s)\n", totals->events);
    free(totals);
}

int main(int argc, char **argv) {
    PhHost *host = NULL;
    PhHandle subscription = PH_INVALID_HANDLE;
    struct totals *totals;
    PhResultCode code;
    PhStr args[3];
    int status = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s PLUGINS_DIR TEXT_FILE\n", argv[0]);
        return 2;
    }
    code = ph_host_new_with_log(PH_LOG_LEVEL_WARN, on_log, NULL, NULL, &host);
    if (code != PH_RESULT_OK) {
        fprintf(stderr, "cannot make a host: %u\n", (unsigned)code);
        return 1;
    }
    code = ph_host_load_dir(host, bytes(argv[1]), on_refused, NULL);
    if (code != PH_RESULT_OK) {
        ph_host_free(host);
        return 1;
    }

    printf("== plugins\n");
    ph_host_enumerate_plugins(host, on_plugin, host);

    totals = (struct totals *)calloc(1, sizeof *totals);
    if (totals == NULL) {
        ph_host_free(host);
        return 1;
    }
    /* From here on the host owns `totals`: free_totals runs exactly once, even on failure. */
    code = ph_host_subscribe(host, str("wordfreq.totals"), on_totals, totals, free_totals,
                             &subscription);
    if (code != PH_RESULT_OK) {
        fprintf(stderr, "subscribe: %u\n", (unsigned)code);
        status = 1;
    }

    printf("== wordfreq --top 5\n");
    fflush(stdout);
    args[0] = str("--top");
    args[1] = str("5");
    args[2] = str(argv[2]);
    code = ph_host_run(host, str("wordfreq"), args, 3, on_output, on_error, "wordfreq");
    if (code != PH_RESULT_OK) {
        status = 1;
    }
    fflush(stdout);
    printf("== events\n");
    printf("wordfreq.totals x%d: %s\n", subscription ? totals->events : 0,
           subscription ? totals->last : "");

    /* A failing command: its message goes to on_error. */
    args[0] = str("/no/such/file.txt");
    code = ph_host_run(host, str("wordfreq"), args, 1, on_output, on_error, "wordfreq");
    printf("missing file: %.*s\n", VIEW(ph_host_result_message(code)));

    /* The application publishes; the journal plugin records it. */
    ph_host_publish(host, str("embed.hello"), bytes("from C"));
    printf("== journal\n");
    fflush(stdout);
    ph_host_run(host, str("journal"), NULL, 0, on_output, on_error, "journal");
    fflush(stdout);

    if (subscription != PH_INVALID_HANDLE) {
        ph_host_unregister(host, subscription); /* free_totals runs here */
    }
    ph_host_free(host);
    return status;
}
