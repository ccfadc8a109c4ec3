/*
 * noop_plugin.c: a bench-only plugin of plughost-bench (`isolated-call`), written in C against
 * plughost.h: `init` registers one command, `noop`, which counts its calls and writes nothing;
 * `noop-count` prints the count. plughost-bench compiles it with gcc:
 *
 *   gcc -O2 -shared -fPIC -fvisibility=hidden -I plugin-api/include -o libnoop.so noop_plugin.c
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "plughost.h"

#define EXPORT __attribute__((visibility("default")))
#define LITERAL(s) {(const uint8_t *)(s), sizeof(s) - 1}

static atomic_ullong calls;

static PhResultCode run_noop(void *user_data, const PhStr *args, size_t arg_count,
                             const PhCommandOutput *output) {
    (void)user_data;
    (void)args;
    (void)arg_count;
    (void)output;
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return PH_RESULT_OK;
}

static PhResultCode run_count(void *user_data, const PhStr *args, size_t arg_count,
                              const PhCommandOutput *output) {
    char line[32];
    PhBytes bytes;
    (void)user_data;
    (void)args;
    (void)arg_count;
    bytes.len = (size_t)snprintf(line, sizeof line, "%llu\n",
                                 (unsigned long long)atomic_load(&calls));
    bytes.ptr = (const uint8_t *)line;
    return output->write(output->context, bytes);
}

static PhResultCode init(PhHostContext *ctx, const PhHostServices *host, void **out_plugin_data) {
    PhResultCode code;
    *out_plugin_data = NULL;
    code = host->register_command(ctx, (PhStr)LITERAL("noop"), run_noop, NULL, NULL, NULL);
    if (code != PH_RESULT_OK) {
        return code;
    }
    return host->register_command(ctx, (PhStr)LITERAL("noop-count"), run_count, NULL, NULL, NULL);
}

static PhResultCode shutdown(void *plugin_data) {
    (void)plugin_data;
    return PH_RESULT_OK;
}

static const PhPluginVtable VTABLE = {sizeof(PhPluginVtable), init, shutdown, NULL};

static const PhPluginDescriptor DESCRIPTOR = {
    PH_ABI_VERSION_MAJOR,
    PH_ABI_VERSION_MINOR,
    sizeof(PhPluginDescriptor),
    LITERAL("noop"),
    LITERAL("1.0.0"),
    LITERAL("plughost-bench: a command that does nothing"),
    &VTABLE,
    NULL,
    0,
    NULL,
    0,
};

EXPORT const PhPluginDescriptor *plughost_plugin_entry(void) { return &DESCRIPTOR; }
