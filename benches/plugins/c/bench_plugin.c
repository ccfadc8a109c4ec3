/*
 * bench_plugin.c: a bench-only plugin of plughost-bench, written in C against plughost.h.
 *
 * plughost-bench compiles it many times with gcc, once per plugin name:
 *
 *   gcc -O2 -shared -fPIC -I plugin-api/include -DPLUGIN_NAME=NAME -DSUBSCRIBERS=N \
 *       -o libNAME.so bench_plugin.c
 *
 * - load-100: 100 copies with SUBSCRIBERS=0; `init` registers one command, NAME, which prints
 *   NAME.
 * - event-fanout: 10 copies with SUBSCRIBERS=100; `init` also subscribes N callbacks to
 *   `bench.fanout`. A callback counts an event only when its payload starts with 'c', so that
 *   the timed publishes (payload "x") write no memory shared between threads.
 *
 * `bench_subscribers` hands the callback and user data of every subscriber to the bench, for its
 * plain-loop baseline over the same function pointers.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plughost.h"

#ifndef PLUGIN_NAME
#error "compile with -DPLUGIN_NAME=name"
#endif
#ifndef SUBSCRIBERS
#define SUBSCRIBERS 0
#endif

#define STRINGIFY2(x) #x
#define STRINGIFY(x) STRINGIFY2(x)
#define NAME STRINGIFY(PLUGIN_NAME)
#define EXPORT __attribute__((visibility("default")))
#define LITERAL(s) {(const uint8_t *)(s), sizeof(s) - 1}

/* One subscriber's user data, on a cache line of its own. */
typedef struct Slot {
    uint64_t count;
    char pad[56];
} Slot;

static Slot slots[SUBSCRIBERS > 0 ? SUBSCRIBERS : 1];

/* SUBSCRIBERS as a variable: loops over it stay free of "always false" warnings when it is 0. */
static const size_t subscriber_count = SUBSCRIBERS;

static PhResultCode on_event(void *user_data, PhStr topic, PhBytes payload) {
    Slot *slot = user_data;
    (void)topic;
    if (payload.len > 0 && payload.ptr[0] == 'c') {
        slot->count++;
    }
    return PH_RESULT_OK;
}

static PhResultCode run(void *user_data, const PhStr *args, size_t arg_count,
                        const PhCommandOutput *output) {
    static const char line[] = NAME "\n";
    PhBytes bytes = LITERAL(line);
    (void)user_data;
    (void)args;
    (void)arg_count;
    return output->write(output->context, bytes);
}

static PhResultCode init(PhHostContext *ctx, const PhHostServices *host, void **out_plugin_data) {
    PhStr name = LITERAL(NAME);
    PhStr topic = LITERAL("bench.fanout");
    PhResultCode code;
    if (ctx == NULL || host == NULL || out_plugin_data == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    if (host->abi_major != PH_ABI_VERSION_MAJOR || host->struct_size < sizeof(PhHostServices)) {
        return PH_RESULT_INVALID_ARGUMENT;
    }
    code = host->register_command(ctx, name, run, NULL, NULL, NULL);
    if (code != PH_RESULT_OK) {
        return code;
    }
    for (size_t i = 0; i < subscriber_count; i++) {
        code = host->subscribe(ctx, topic, on_event, &slots[i], NULL, NULL);
        if (code != PH_RESULT_OK) {
            return code;
        }
    }
    *out_plugin_data = NULL;
    return PH_RESULT_OK;
}

static PhResultCode shutdown(void *plugin_data) {
    (void)plugin_data;
    return PH_RESULT_OK;
}

static PhResultCode enumerate_commands(void *plugin_data, PhCommandInfoCallback callback,
                                       void *user_data) {
    PhCommandInfo info = {
        sizeof(PhCommandInfo),
        LITERAL(NAME),
        LITERAL("Prints the plugin's name"),
        LITERAL(""),
    };
    (void)plugin_data;
    callback(user_data, &info);
    return PH_RESULT_OK;
}

static const PhPluginVtable VTABLE = {
    sizeof(PhPluginVtable),
    init,
    shutdown,
    enumerate_commands,
    NULL, /* save_state */
    NULL, /* restore_state */
};

static const PhPluginDescriptor DESCRIPTOR = {
    PH_ABI_VERSION_MAJOR,
    PH_ABI_VERSION_MINOR,
    sizeof(PhPluginDescriptor),
    LITERAL(NAME),
    LITERAL("1.0.0"),
    LITERAL("Bench-only C plugin of plughost-bench"),
    &VTABLE,
    NULL, /* provides (ABI 1.3): no interfaces */
    0,
    NULL, /* requires */
    0,
};

EXPORT const PhPluginDescriptor *plughost_plugin_entry(void) {
    return &DESCRIPTOR;
}

/* Writes up to `capacity` subscribers (callback and user data) and returns how many there are. */
EXPORT size_t bench_subscribers(PhEventCallback *callbacks, void **user_data, size_t capacity) {
    for (size_t i = 0; i < subscriber_count && i < capacity; i++) {
        callbacks[i] = on_event;
        user_data[i] = &slots[i];
    }
    return subscriber_count;
}

/* How many events all subscribers of this library counted. */
EXPORT uint64_t bench_counted(void) {
    uint64_t total = 0;
    for (size_t i = 0; i < subscriber_count; i++) {
        total += slots[i].count;
    }
    return total;
}
