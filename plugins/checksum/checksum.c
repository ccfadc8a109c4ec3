/*
 * checksum: a plughost plugin written in C, against the generated header alone.
 *
 * Commands:
 *
 *   checksum FILE...   One line per file: CRC-32 (IEEE 802.3, the one of zlib's crc32) as 8
 *                      lowercase hex digits, size in bytes and name, separated by tabs. Files are
 *                      read in blocks of BLOCK_SIZE bytes, so any size works in bounded memory.
 *                      When every file was read it publishes the event "checksum.done" with the
 *                      payload "files=N bytes=B".
 *   checksum-plugins   One line per loaded plugin, gathered through the host's enumeration
 *                      callbacks: NAME, VERSION, ABI MAJOR.MINOR, and its commands separated by
 *                      spaces, separated by tabs.
 *   checksum-events    The "wordfreq.totals" events (published by the Rust wordfreq plugin) seen
 *                      so far: COUNT<TAB>TOPIC<TAB>LAST PAYLOAD, one line, also when COUNT is 0.
 *
 * Threads: the host may run commands and event handlers on any thread, several at once. The
 * CRC table is written in init only; the event record is guarded by a mutex.
 *
 * Memory: the plugin state is reference counted. init holds one reference and gives one to each
 * registration, which the host releases through the registration's destroy callback once no
 * dispatch uses it any more. shutdown releases init's reference. The last release frees the state,
 * whichever happens last, on whichever thread.
 *
 * Build (what build.rs does, with the compiler and flags of the cc crate):
 *   cc -std=c11 -Wall -Wextra -Wpedantic -fPIC -fvisibility=hidden -pthread \
 *      -I plugin-api/include -shared -o libchecksum.so plugins/checksum/checksum.c
 */

/* strerror_r (the POSIX version). */
#define _POSIX_C_SOURCE 200809L

#include "plughost.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* build.rs passes the package version; a build by hand gets this one. */
#ifndef CHECKSUM_VERSION
#define CHECKSUM_VERSION "0.0.0-unversioned"
#endif

/* The entry point is the library's only exported symbol (the rest is static, or hidden by
 * -fvisibility=hidden). */
#if defined(_WIN32)
#define CHECKSUM_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define CHECKSUM_EXPORT __attribute__((visibility("default")))
#else
#define CHECKSUM_EXPORT
#endif

#if defined(__GNUC__)
#define CHECKSUM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CHECKSUM_PRINTF(fmt, args)
#endif

/* How many bytes of a file are read at once. */
#define BLOCK_SIZE ((size_t)64 * 1024)

/* The longest log record or error message; longer ones are cut. */
#define MESSAGE_MAX 1024

/* The reflected CRC-32 polynomial of IEEE 802.3 (0x04C11DB7 bit-reversed). */
#define CRC32_POLYNOMIAL 0xEDB88320u

#define DONE_TOPIC "checksum.done"
#define TOTALS_TOPIC "wordfreq.totals"

/* A string literal as a PhStr, in a static initializer. */
#define LITERAL(s) {(const uint8_t *)(s), sizeof(s) - 1}

/* The plugin's state, shared by its callbacks. */
typedef struct checksum_plugin {
    /* What init received: valid until the library is unloaded (never, in plughost). */
    PhHostContext *ctx;
    const PhHostServices *host;
    /* One reference for init (until shutdown) and one per registration. */
    atomic_size_t refs;
    /* CRC of each byte value; written in init, read-only afterwards. */
    uint32_t crc_table[256];
    /* Guards the fields below. */
    pthread_mutex_t lock;
    /* How many TOTALS_TOPIC events were received. */
    uint64_t totals_seen;
    /* The last one's payload, control bytes replaced by spaces; NUL-terminated, owned. */
    char *last_totals;
} checksum_plugin;

static PhResultCode run_checksum(void *user_data, const PhStr *args, size_t arg_count,
                                 const PhCommandOutput *output);
static PhResultCode run_plugins(void *user_data, const PhStr *args, size_t arg_count,
                                const PhCommandOutput *output);
static PhResultCode run_events(void *user_data, const PhStr *args, size_t arg_count,
                               const PhCommandOutput *output);

/* A command of this plugin. */
typedef struct command_spec {
    PhStr name;
    PhStr description;
    PhStr usage;
    PhCommandCallback run;
} command_spec;

static const command_spec COMMANDS[] = {
    {LITERAL("checksum"),
     LITERAL("CRC-32 (as zlib.crc32), size and name of each file: CRC<TAB>SIZE<TAB>NAME"),
     LITERAL("FILE..."), run_checksum},
    {LITERAL("checksum-plugins"),
     LITERAL("The loaded plugins and their commands, through the host's enumeration callbacks"),
     LITERAL(""), run_plugins},
    {LITERAL("checksum-events"),
     LITERAL("The wordfreq.totals events seen so far: COUNT<TAB>TOPIC<TAB>LAST PAYLOAD"),
     LITERAL(""), run_events},
};

#define COMMAND_COUNT (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

/* ---- Small helpers ---------------------------------------------------------------------- */

static PhStr str_of(const char *s, size_t len) {
    PhStr str;
    str.ptr = (const uint8_t *)s;
    str.len = len;
    return str;
}

/* A PhStr's length as a printf precision ("%.*s"), cut at INT_MAX. */
static int precision(PhStr s) {
    return s.len > (size_t)INT_MAX ? INT_MAX : (int)s.len;
}

static void plugin_retain(checksum_plugin *plugin) {
    atomic_fetch_add_explicit(&plugin->refs, 1, memory_order_relaxed);
}

static void plugin_release(checksum_plugin *plugin) {
    if (atomic_fetch_sub_explicit(&plugin->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    pthread_mutex_destroy(&plugin->lock);
    free(plugin->last_totals);
    free(plugin);
}

/* The destroy callback of every registration: releases the registration's reference. */
static void release_registration(void *user_data) {
    if (user_data != NULL) {
        plugin_release((checksum_plugin *)user_data);
    }
}

/* Logs a formatted record through the host, if the host's level lets it through. */
static void log_message(const checksum_plugin *plugin, PhLogLevel level, const char *format, ...)
    CHECKSUM_PRINTF(3, 4);

static void log_message(const checksum_plugin *plugin, PhLogLevel level, const char *format, ...) {
    char message[MESSAGE_MAX];
    va_list args;
    int len;
    if (level > plugin->host->log_max_level(plugin->ctx)) {
        return; /* Filtered on this side: the record never crosses the boundary. */
    }
    va_start(args, format);
    len = vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    if (len < 0) {
        return;
    }
    if ((size_t)len >= sizeof(message)) {
        len = (int)sizeof(message) - 1;
    }
    /* An empty target: the host shows the plugin's name. The result is of no use here. */
    (void)plugin->host->log(plugin->ctx, level, str_of("", 0), str_of(message, (size_t)len));
}

/* Sets the command's error message (formatted, copied by the host) and returns `code`. */
static PhResultCode fail(const PhCommandOutput *output, PhResultCode code, const char *format, ...)
    CHECKSUM_PRINTF(3, 4);

static PhResultCode fail(const PhCommandOutput *output, PhResultCode code, const char *format, ...) {
    char message[MESSAGE_MAX];
    va_list args;
    int len;
    va_start(args, format);
    len = vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    if (len < 0) {
        len = 0;
    } else if ((size_t)len >= sizeof(message)) {
        len = (int)sizeof(message) - 1;
    }
    output->set_error(output->context, str_of(message, (size_t)len));
    return code;
}

static PhResultCode write_bytes(const PhCommandOutput *output, const void *bytes, size_t len) {
    PhBytes view;
    PhResultCode code;
    view.ptr = (const uint8_t *)bytes;
    view.len = len;
    code = output->write(output->context, view);
    /* PANICKED from the host means the host failed: passed on, it would fault this plugin. */
    return code == PH_RESULT_PANICKED ? PH_RESULT_ERROR : code;
}

static PhResultCode write_text(const PhCommandOutput *output, const char *text) {
    return write_bytes(output, text, strlen(text));
}

/*
 * The checks every command makes on what the host passed: returns PH_RESULT_OK if the command may
 * use `user_data`, `args[0..arg_count]` and `output`.
 */
static PhResultCode check_command_call(const void *user_data, const PhStr *args, size_t arg_count,
                                       const PhCommandOutput *output) {
    size_t i;
    if (output == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    /* Fields of a newer minor version may follow; those of ours must be there. */
    if (output->struct_size < sizeof(PhCommandOutput)) {
        return PH_RESULT_INVALID_ARGUMENT;
    }
    if (output->write == NULL || output->set_error == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    if (user_data == NULL) {
        return fail(output, PH_RESULT_NULL_POINTER, "no plugin state (user_data is NULL)");
    }
    if (args == NULL && arg_count != 0) {
        return fail(output, PH_RESULT_NULL_POINTER, "no arguments array (args is NULL)");
    }
    for (i = 0; i < arg_count; i++) {
        if (args[i].ptr == NULL && args[i].len != 0) {
            return fail(output, PH_RESULT_NULL_POINTER, "argument %zu is NULL", i + 1);
        }
    }
    return PH_RESULT_OK;
}

/* ---- checksum FILE... ----------------------------------------------------------------- */

static void crc32_init_table(uint32_t table[256]) {
    uint32_t n;
    for (n = 0; n < 256; n++) {
        uint32_t c = n;
        int k;
        for (k = 0; k < 8; k++) {
            c = (c & 1u) ? CRC32_POLYNOMIAL ^ (c >> 1) : c >> 1;
        }
        table[n] = c;
    }
}

/* Continues a CRC over `len` more bytes. `crc` is the running value before the final inversion:
 * start with 0xFFFFFFFF, and invert the result after the last block. */
static uint32_t crc32_update(const uint32_t table[256], uint32_t crc, const unsigned char *bytes,
                             size_t len) {
    size_t i;
    for (i = 0; i < len; i++) {
        crc = table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
    }
    return crc;
}

/* Describes the error number `err` in `why`. */
static void describe_errno(int err, char *why, size_t size) {
    if (err == 0 || strerror_r(err, why, size) != 0) {
        snprintf(why, size, "error %d", err);
    }
}

/* Reads the file named `name` through `buffer` (BLOCK_SIZE bytes) and writes its CRC and size.
 * On failure sets the command's error message. */
static PhResultCode checksum_file(const checksum_plugin *plugin, PhStr name,
                                  unsigned char *buffer, uint32_t *out_crc, uint64_t *out_size,
                                  const PhCommandOutput *output) {
    char *path;
    FILE *file;
    uint32_t crc = 0xFFFFFFFFu;
    uint64_t size = 0;
    int failed;
    int read_errno;
    size_t got;

    if (name.len == 0) {
        return fail(output, PH_RESULT_INVALID_ARGUMENT, "empty file name");
    }
    if (memchr(name.ptr, '\0', name.len) != NULL) {
        return fail(output, PH_RESULT_INVALID_ARGUMENT, "%.*s: NUL byte in file name",
                    precision(name), (const char *)name.ptr);
    }
    /* The host's strings are not NUL-terminated: fopen needs a copy. */
    path = (char *)malloc(name.len + 1);
    if (path == NULL) {
        return fail(output, PH_RESULT_ERROR, "out of memory");
    }
    memcpy(path, name.ptr, name.len);
    path[name.len] = '\0';

    errno = 0;
    file = fopen(path, "rb");
    free(path);
    if (file == NULL) {
        char why[256];
        describe_errno(errno, why, sizeof(why));
        return fail(output, PH_RESULT_ERROR, "%.*s: %s", precision(name), (const char *)name.ptr,
                    why);
    }
    log_message(plugin, PH_LOG_LEVEL_DEBUG, "reading %.*s", precision(name),
                (const char *)name.ptr);
    errno = 0;
    do {
        got = fread(buffer, 1, BLOCK_SIZE, file);
        crc = crc32_update(plugin->crc_table, crc, buffer, got);
        size += got;
    } while (got == BLOCK_SIZE);
    failed = ferror(file);
    read_errno = errno;
    fclose(file);
    if (failed) {
        char why[256];
        describe_errno(read_errno, why, sizeof(why));
        return fail(output, PH_RESULT_ERROR, "%.*s: %s", precision(name), (const char *)name.ptr,
                    why);
    }
    *out_crc = crc ^ 0xFFFFFFFFu;
    *out_size = size;
    return PH_RESULT_OK;
}

static PhResultCode run_checksum(void *user_data, const PhStr *args, size_t arg_count,
                                 const PhCommandOutput *output) {
    const checksum_plugin *plugin = (const checksum_plugin *)user_data;
    unsigned char *buffer;
    uint64_t total = 0;
    size_t i;
    PhResultCode code = check_command_call(user_data, args, arg_count, output);
    if (code != PH_RESULT_OK) {
        return code;
    }
    if (arg_count == 0) {
        return fail(output, PH_RESULT_INVALID_ARGUMENT, "usage: checksum FILE...");
    }
    /* On the heap: a command may run on a thread with a small stack. */
    buffer = (unsigned char *)malloc(BLOCK_SIZE);
    if (buffer == NULL) {
        return fail(output, PH_RESULT_ERROR, "out of memory");
    }
    for (i = 0; i < arg_count && code == PH_RESULT_OK; i++) {
        char fields[64];
        uint32_t crc = 0;
        uint64_t size = 0;
        code = checksum_file(plugin, args[i], buffer, &crc, &size, output);
        if (code != PH_RESULT_OK) {
            break;
        }
        total += size;
        snprintf(fields, sizeof(fields), "%08" PRIx32 "\t%" PRIu64 "\t", crc, size);
        code = write_text(output, fields);
        if (code == PH_RESULT_OK) {
            code = write_bytes(output, args[i].ptr, args[i].len);
        }
        if (code == PH_RESULT_OK) {
            code = write_text(output, "\n");
        }
    }
    free(buffer);
    if (code == PH_RESULT_OK) {
        char payload[96];
        int len = snprintf(payload, sizeof(payload), "files=%zu bytes=%" PRIu64, arg_count, total);
        PhBytes bytes;
        PhStr topic = LITERAL(DONE_TOPIC);
        PhResultCode published;
        bytes.ptr = (const uint8_t *)payload;
        bytes.len = len > 0 ? (size_t)len : 0;
        log_message(plugin, PH_LOG_LEVEL_INFO, "checksummed %zu files, %" PRIu64 " bytes",
                    arg_count, total);
        /* The checksums are written: a failed publish is worth a warning, not a failed command. */
        published = plugin->host->publish(plugin->ctx, topic, bytes);
        if (published != PH_RESULT_OK) {
            log_message(plugin, PH_LOG_LEVEL_WARN, "publishing %s failed: code %" PRIu32,
                        DONE_TOPIC, published);
        }
    }
    return code;
}

/* ---- checksum-plugins ---------------------------------------------------------------- */

/* What the enumeration callbacks of `checksum-plugins` share. */
typedef struct plugin_listing {
    const checksum_plugin *plugin;
    const PhCommandOutput *output;
    /* The first failure, which stops the enumerations. */
    PhResultCode code;
    /* Commands listed so far for the current plugin. */
    size_t commands;
} plugin_listing;

static bool list_command(void *user_data, const PhCommandInfo *info) {
    plugin_listing *listing = (plugin_listing *)user_data;
    if (listing == NULL || info == NULL) {
        return false;
    }
    if (info->struct_size < sizeof(PhCommandInfo)) {
        listing->code = PH_RESULT_INVALID_ARGUMENT;
        return false;
    }
    if (listing->commands > 0) {
        listing->code = write_text(listing->output, " ");
    }
    if (listing->code == PH_RESULT_OK) {
        listing->code = write_bytes(listing->output, info->name.ptr, info->name.len);
    }
    listing->commands++;
    return listing->code == PH_RESULT_OK;
}

static bool list_plugin(void *user_data, const PhPluginInfo *info) {
    plugin_listing *listing = (plugin_listing *)user_data;
    const checksum_plugin *plugin;
    char abi[32];
    PhResultCode code;
    if (listing == NULL || info == NULL) {
        return false;
    }
    plugin = listing->plugin;
    if (info->struct_size < sizeof(PhPluginInfo)) {
        listing->code = PH_RESULT_INVALID_ARGUMENT;
        return false;
    }
    snprintf(abi, sizeof(abi), "\t%u.%u\t", (unsigned)info->abi_major, (unsigned)info->abi_minor);
    code = write_bytes(listing->output, info->name.ptr, info->name.len);
    if (code == PH_RESULT_OK) {
        code = write_text(listing->output, "\t");
    }
    if (code == PH_RESULT_OK) {
        code = write_bytes(listing->output, info->version.ptr, info->version.len);
    }
    if (code == PH_RESULT_OK) {
        code = write_text(listing->output, abi);
    }
    listing->code = code;
    if (code != PH_RESULT_OK) {
        return false;
    }
    /* Host services are reentrant: ask the host, from inside its enumeration, to have this
     * plugin enumerate its commands. */
    listing->commands = 0;
    code = plugin->host->enumerate_commands(plugin->ctx, info->name, list_command, listing);
    if (listing->code != PH_RESULT_OK) {
        return false;
    }
    if (code != PH_RESULT_OK && code != PH_RESULT_NOT_FOUND) {
        /* NOT_FOUND: the plugin shut down meanwhile; its row just has no commands. */
        listing->code = code;
        return false;
    }
    listing->code = write_text(listing->output, "\n");
    return listing->code == PH_RESULT_OK;
}

static PhResultCode run_plugins(void *user_data, const PhStr *args, size_t arg_count,
                                const PhCommandOutput *output) {
    plugin_listing listing;
    PhResultCode code = check_command_call(user_data, args, arg_count, output);
    if (code != PH_RESULT_OK) {
        return code;
    }
    if (arg_count != 0) {
        return fail(output, PH_RESULT_INVALID_ARGUMENT, "usage: checksum-plugins (no arguments)");
    }
    listing.plugin = (const checksum_plugin *)user_data;
    listing.output = output;
    listing.code = PH_RESULT_OK;
    listing.commands = 0;
    code = listing.plugin->host->enumerate_plugins(listing.plugin->ctx, list_plugin, &listing);
    if (code == PH_RESULT_OK) {
        code = listing.code;
    }
    if (code != PH_RESULT_OK && code != PH_RESULT_IO) {
        return fail(output, code, "enumeration failed: code %" PRIu32, code);
    }
    return code;
}

/* ---- Events -------------------------------------------------------------------------------- */

/* Handler of TOTALS_TOPIC: counts the event and keeps a copy of its payload. */
static PhResultCode on_totals(void *user_data, PhStr topic, PhBytes payload) {
    checksum_plugin *plugin = (checksum_plugin *)user_data;
    char *copy;
    size_t i;
    (void)topic; /* Always TOTALS_TOPIC: the only subscription. */
    if (plugin == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    if (payload.ptr == NULL && payload.len != 0) {
        return PH_RESULT_NULL_POINTER;
    }
    /* The payload is borrowed for this call only: copy it. */
    copy = (char *)malloc(payload.len + 1);
    if (copy == NULL) {
        return PH_RESULT_ERROR;
    }
    for (i = 0; i < payload.len; i++) {
        unsigned char c = payload.ptr[i];
        copy[i] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
    }
    copy[payload.len] = '\0';
    log_message(plugin, PH_LOG_LEVEL_DEBUG, "received %s: %s", TOTALS_TOPIC, copy);

    pthread_mutex_lock(&plugin->lock);
    plugin->totals_seen++;
    free(plugin->last_totals);
    plugin->last_totals = copy;
    pthread_mutex_unlock(&plugin->lock);
    return PH_RESULT_OK;
}

static PhResultCode run_events(void *user_data, const PhStr *args, size_t arg_count,
                               const PhCommandOutput *output) {
    checksum_plugin *plugin = (checksum_plugin *)user_data;
    char count[32];
    char *last;
    uint64_t seen;
    PhResultCode code = check_command_call(user_data, args, arg_count, output);
    if (code != PH_RESULT_OK) {
        return code;
    }
    if (arg_count != 0) {
        return fail(output, PH_RESULT_INVALID_ARGUMENT, "usage: checksum-events (no arguments)");
    }
    /* Copied under the lock, written without it: writing may block on a slow reader. */
    pthread_mutex_lock(&plugin->lock);
    seen = plugin->totals_seen;
    last = plugin->last_totals != NULL ? strdup(plugin->last_totals) : NULL;
    pthread_mutex_unlock(&plugin->lock);
    if (seen > 0 && last == NULL) {
        return fail(output, PH_RESULT_ERROR, "out of memory");
    }
    snprintf(count, sizeof(count), "%" PRIu64 "\t", seen);
    code = write_text(output, count);
    if (code == PH_RESULT_OK) {
        code = write_text(output, TOTALS_TOPIC "\t");
    }
    if (code == PH_RESULT_OK && last != NULL) {
        code = write_text(output, last);
    }
    if (code == PH_RESULT_OK) {
        code = write_text(output, "\n");
    }
    free(last);
    return code;
}

/* ---- The function table -------------------------------------------------------------------- */

/* Registers one command with its text (ABI 1.2: the host keeps the text and answers command
 * enumerations itself); the registration holds a reference to the state. */
static PhResultCode register_command(checksum_plugin *plugin, const command_spec *command) {
    PhResultCode code;
    PhCommandInfo info;
    info.struct_size = (uint32_t)sizeof(PhCommandInfo);
    info.name = command->name;
    info.description = command->description;
    info.usage = command->usage;
    plugin_retain(plugin);
    /* Whatever the result, the host calls release_registration once for this reference: on
     * error before this returns (ABI 1.2), on success when the registration ends. */
    code = plugin->host->register_command_with_info(plugin->ctx, &info, command->run, plugin,
                                                    release_registration, NULL);
    if (code != PH_RESULT_OK) {
        log_message(plugin, PH_LOG_LEVEL_ERROR, "registering command %.*s failed: code %" PRIu32,
                    precision(command->name), (const char *)command->name.ptr, code);
    }
    return code;
}

static PhResultCode checksum_init(PhHostContext *ctx, const PhHostServices *host,
                                  void **out_plugin_data) {
    checksum_plugin *plugin;
    PhStr totals = LITERAL(TOTALS_TOPIC);
    PhResultCode code = PH_RESULT_OK;
    size_t i;
    if (ctx == NULL || host == NULL || out_plugin_data == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    /* The host refuses plugins of a newer minor version, so its table has at least our fields;
     * check anyway rather than read past the end of a smaller one. */
    if (host->abi_major != PH_ABI_VERSION_MAJOR || host->struct_size < sizeof(PhHostServices)) {
        return PH_RESULT_ERROR;
    }
    plugin = (checksum_plugin *)calloc(1, sizeof(*plugin));
    if (plugin == NULL) {
        return PH_RESULT_ERROR;
    }
    if (pthread_mutex_init(&plugin->lock, NULL) != 0) {
        free(plugin);
        return PH_RESULT_ERROR;
    }
    plugin->ctx = ctx;
    plugin->host = host;
    atomic_init(&plugin->refs, 1);
    crc32_init_table(plugin->crc_table);

    for (i = 0; i < COMMAND_COUNT && code == PH_RESULT_OK; i++) {
        code = register_command(plugin, &COMMANDS[i]);
    }
    if (code == PH_RESULT_OK) {
        plugin_retain(plugin);
        /* As for commands, the host releases this reference on error too. */
        code = host->subscribe(ctx, totals, on_totals, plugin, release_registration, NULL);
        if (code != PH_RESULT_OK) {
            log_message(plugin, PH_LOG_LEVEL_ERROR, "subscribing to %s failed: code %" PRIu32,
                        TOTALS_TOPIC, code);
        }
    }
    if (code != PH_RESULT_OK) {
        /* The host undoes the registrations made so far and releases their references. */
        plugin_release(plugin);
        return code;
    }
    log_message(plugin, PH_LOG_LEVEL_DEBUG, "ready: %zu commands, subscribed to %s",
                (size_t)COMMAND_COUNT, TOTALS_TOPIC);
    *out_plugin_data = plugin;
    return PH_RESULT_OK;
}

static PhResultCode checksum_shutdown(void *plugin_data) {
    checksum_plugin *plugin = (checksum_plugin *)plugin_data;
    if (plugin == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    log_message(plugin, PH_LOG_LEVEL_DEBUG, "shutting down");
    /* The registrations end when this returns; their destroy callbacks free the state last. */
    plugin_release(plugin);
    return PH_RESULT_OK;
}

static const PhPluginVtable VTABLE = {
    (uint32_t)sizeof(PhPluginVtable),
    checksum_init,
    checksum_shutdown,
    NULL, /* enumerate_commands: the host keeps the text of the commands (ABI 1.2). */
    NULL, /* save_state: no state to hand over across a reload (ABI 1.4). */
    NULL, /* restore_state */
};

static const PhPluginDescriptor DESCRIPTOR = {
    PH_ABI_VERSION_MAJOR,
    PH_ABI_VERSION_MINOR,
    (uint32_t)sizeof(PhPluginDescriptor),
    LITERAL("checksum"),
    LITERAL(CHECKSUM_VERSION),
    LITERAL("CRC-32 checksums of files; a plugin written in C"),
    &VTABLE,
    NULL, /* provides (ABI 1.3): no interfaces */
    0,
    NULL, /* requires */
    0,
};

CHECKSUM_EXPORT const PhPluginDescriptor *plughost_plugin_entry(void) {
    return &DESCRIPTOR;
}
