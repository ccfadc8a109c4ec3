/*
 * Compiled (not linked) by tests/header.rs as C11 and as C++17, with every warning an error: the
 * host library's header includes what it needs, and C callbacks of the natural types (returning
 * `bool`) can be passed to every function without a cast.
 */
#include "plughost_host.h"

#ifdef __cplusplus
#define CHECK(cond, what) static_assert(cond, what)
#else
#define CHECK(cond, what) _Static_assert(cond, what)
#endif

CHECK(sizeof(bool) == 1, "C's bool is one byte, as the library reads it");

static bool on_output(void *user_data, PhBytes bytes) {
    (void)user_data;
    return bytes.len > 0;
}

static void on_error(void *user_data, PhResultCode code, PhStr message) {
    (void)user_data;
    (void)code;
    (void)message;
}

static void on_refused(void *user_data, PhStr path, PhStr reason) {
    (void)user_data;
    (void)path;
    (void)reason;
}

static void on_log(void *user_data, uint32_t level, PhStr plugin, PhStr target, PhStr message) {
    (void)user_data;
    (void)level;
    (void)plugin;
    (void)target;
    (void)message;
}

static bool on_plugin(void *user_data, const PhPluginInfo *info) {
    (void)user_data;
    return info->name.len > 0;
}

static bool on_command(void *user_data, const PhCommandInfo *info) {
    (void)user_data;
    return info->name.len > 0;
}

static PhResultCode on_event(void *user_data, PhStr topic, PhBytes payload) {
    (void)user_data;
    (void)topic;
    (void)payload;
    return PH_RESULT_OK;
}

static void on_destroy(void *user_data) {
    (void)user_data;
}

static PhStr text(const char *s, size_t len) {
    PhStr view;
    view.ptr = (const uint8_t *)s;
    view.len = len;
    return view;
}

static PhBytes bytes_of(const char *s, size_t len) {
    PhBytes view;
    view.ptr = (const uint8_t *)s;
    view.len = len;
    return view;
}

int use_every_function(void);

int use_every_function(void) {
    PhHost *host = NULL;
    PhHandle handle = PH_INVALID_HANDLE;
    bool allow = false;
    PhStr args[1];
    args[0] = text("x", 1);
    if (ph_host_new(&host) != PH_RESULT_OK) {
        return 1;
    }
    ph_host_free(host);
    if (ph_host_new_with_log(PH_LOG_LEVEL_INFO, on_log, NULL, on_destroy, &host) != PH_RESULT_OK) {
        return 1;
    }
    ph_host_set_config(host, text("", 0), on_error, NULL, &allow);
    ph_host_set_allow_insecure(host, allow);
    ph_host_load_dir(host, bytes_of("plugins", 7), on_refused, NULL);
    ph_host_load_file(host, bytes_of("plugins/libx.so", 15), on_refused, NULL);
    ph_host_enumerate_plugins(host, on_plugin, NULL);
    ph_host_enumerate_commands(host, text("x", 1), on_command, NULL);
    ph_host_run(host, text("x", 1), args, 1, on_output, on_error, NULL);
    ph_host_subscribe(host, text("*", 1), on_event, NULL, on_destroy, &handle);
    ph_host_publish(host, text("a.b", 3), bytes_of("", 0));
    ph_host_unregister(host, handle);
    ph_host_shutdown(host);
    ph_host_free(host);
    return (int)ph_host_result_message(PH_RESULT_OK).len;
}
