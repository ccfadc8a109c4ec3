/*
 * Compiled by tests/header_compiles.rs as C11, C17 and C++17, with every warning an error.
 *
 * It includes nothing but the generated header, defines a small but complete plugin against it
 * (entry point, descriptor, function table, a command, an event handler, enumeration), and checks
 * at compile time that every size, alignment and field offset, every result code and every
 * version constant equals the Rust side's. The test passes those as macros: SIZE_<type>,
 * ALIGN_<type>, OFFSET_<type>_<field>, RUST_<constant>.
 */
#include "plughost.h"

#ifdef __cplusplus
#define CHECK(cond, what) static_assert(cond, what)
#define ALIGN_OF(type) alignof(type)
#else
#define CHECK(cond, what) _Static_assert(cond, what)
#define ALIGN_OF(type) _Alignof(type)
#endif

#define CHECK_TYPE(type)                                                              \
    CHECK(sizeof(type) == SIZE_##type, "size of " #type " differs from Rust's");      \
    CHECK(ALIGN_OF(type) == ALIGN_##type, "alignment of " #type " differs from Rust's")
#define CHECK_FIELD(type, field)                                                      \
    CHECK(offsetof(type, field) == OFFSET_##type##_##field,                           \
          "offset of " #type "." #field " differs from Rust's")
#define CHECK_CONSTANT(name) CHECK((name) == RUST_##name, #name " differs from Rust's")

CHECK_TYPE(PhResultCode);
CHECK_TYPE(PhHandle);
CHECK_TYPE(PhResult);
CHECK_TYPE(PhLogLevel);

CHECK_TYPE(PhStr);
CHECK_FIELD(PhStr, ptr);
CHECK_FIELD(PhStr, len);

CHECK_TYPE(PhBytes);
CHECK_FIELD(PhBytes, ptr);
CHECK_FIELD(PhBytes, len);

CHECK_TYPE(PhCommandOutput);
CHECK_FIELD(PhCommandOutput, struct_size);
CHECK_FIELD(PhCommandOutput, context);
CHECK_FIELD(PhCommandOutput, write);
CHECK_FIELD(PhCommandOutput, set_error);

CHECK_TYPE(PhCommandInfo);
CHECK_FIELD(PhCommandInfo, struct_size);
CHECK_FIELD(PhCommandInfo, name);
CHECK_FIELD(PhCommandInfo, description);
CHECK_FIELD(PhCommandInfo, usage);

CHECK_TYPE(PhPluginInfo);
CHECK_FIELD(PhPluginInfo, struct_size);
CHECK_FIELD(PhPluginInfo, abi_major);
CHECK_FIELD(PhPluginInfo, abi_minor);
CHECK_FIELD(PhPluginInfo, name);
CHECK_FIELD(PhPluginInfo, version);
CHECK_FIELD(PhPluginInfo, description);
CHECK_FIELD(PhPluginInfo, path);

CHECK_TYPE(PhHostServices);
CHECK_FIELD(PhHostServices, abi_major);
CHECK_FIELD(PhHostServices, abi_minor);
CHECK_FIELD(PhHostServices, struct_size);
CHECK_FIELD(PhHostServices, log);
CHECK_FIELD(PhHostServices, log_max_level);
CHECK_FIELD(PhHostServices, register_command);
CHECK_FIELD(PhHostServices, unregister);
CHECK_FIELD(PhHostServices, subscribe);
CHECK_FIELD(PhHostServices, publish);
CHECK_FIELD(PhHostServices, enumerate_plugins);
CHECK_FIELD(PhHostServices, enumerate_commands);
CHECK_FIELD(PhHostServices, config_get);
CHECK_FIELD(PhHostServices, register_command_with_info);

CHECK_TYPE(PhPluginVtable);
CHECK_FIELD(PhPluginVtable, struct_size);
CHECK_FIELD(PhPluginVtable, init);
CHECK_FIELD(PhPluginVtable, shutdown);
CHECK_FIELD(PhPluginVtable, enumerate_commands);

CHECK_TYPE(PhPluginDescriptor);
CHECK_FIELD(PhPluginDescriptor, abi_major);
CHECK_FIELD(PhPluginDescriptor, abi_minor);
CHECK_FIELD(PhPluginDescriptor, struct_size);
CHECK_FIELD(PhPluginDescriptor, name);
CHECK_FIELD(PhPluginDescriptor, version);
CHECK_FIELD(PhPluginDescriptor, description);
CHECK_FIELD(PhPluginDescriptor, vtable);

CHECK_CONSTANT(PH_ABI_VERSION_MAJOR);
CHECK_CONSTANT(PH_ABI_VERSION_MINOR);
CHECK_CONSTANT(PH_MAX_NAME_LEN);
CHECK_CONSTANT(PH_MAX_VERSION_LEN);
CHECK_CONSTANT(PH_MAX_DESCRIPTION_LEN);
CHECK_CONSTANT(PH_MAX_USAGE_LEN);
CHECK_CONSTANT(PH_MAX_TOPIC_LEN);
CHECK_CONSTANT(PH_MAX_REGISTRATIONS_PER_PLUGIN);
CHECK_CONSTANT(PH_MAX_EVENT_DEPTH);
CHECK_CONSTANT(PH_MAX_ENUMERATION_DEPTH);
CHECK_CONSTANT(PH_INVALID_HANDLE);

CHECK_CONSTANT(PH_RESULT_OK);
CHECK_CONSTANT(PH_RESULT_ERROR);
CHECK_CONSTANT(PH_RESULT_INVALID_ARGUMENT);
CHECK_CONSTANT(PH_RESULT_NULL_POINTER);
CHECK_CONSTANT(PH_RESULT_INVALID_UTF8);
CHECK_CONSTANT(PH_RESULT_UNKNOWN_HANDLE);
CHECK_CONSTANT(PH_RESULT_ALREADY_EXISTS);
CHECK_CONSTANT(PH_RESULT_NOT_FOUND);
CHECK_CONSTANT(PH_RESULT_PANICKED);
CHECK_CONSTANT(PH_RESULT_LIMIT_EXCEEDED);
CHECK_CONSTANT(PH_RESULT_SHUT_DOWN);
CHECK_CONSTANT(PH_RESULT_IO);
CHECK_CONSTANT(PH_RESULT_WRONG_THREAD);

CHECK_CONSTANT(PH_LOG_LEVEL_OFF);
CHECK_CONSTANT(PH_LOG_LEVEL_ERROR);
CHECK_CONSTANT(PH_LOG_LEVEL_WARN);
CHECK_CONSTANT(PH_LOG_LEVEL_INFO);
CHECK_CONSTANT(PH_LOG_LEVEL_DEBUG);
CHECK_CONSTANT(PH_LOG_LEVEL_TRACE);

/* The entry point's symbol name is a string literal that names the declared function. */
static const char ENTRY_POINT_SYMBOL[] = PH_ENTRY_POINT_SYMBOL;
CHECK(sizeof(ENTRY_POINT_SYMBOL) == sizeof("plughost_plugin_entry"), "entry point symbol");

/* A string literal as a PhStr (in the common subset of C and C++: no compound literal). */
#define LITERAL(s) {(const uint8_t *)(s), sizeof(s) - 1}

/* A plugin's state: what init keeps for later calls. */
struct hello {
    PhHostContext *ctx;
    const PhHostServices *host;
};

static struct hello HELLO = {NULL, NULL};

static PhResultCode hello_command(void *user_data, const PhStr *args, size_t arg_count,
                                  const PhCommandOutput *output) {
    static const uint8_t GREETING[] = "hello\n";
    PhBytes bytes = {GREETING, sizeof(GREETING) - 1};
    (void)args;
    if (user_data == NULL || output == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    if (arg_count != 0) {
        PhStr message = LITERAL("usage: hello");
        output->set_error(output->context, message);
        return PH_RESULT_INVALID_ARGUMENT;
    }
    return output->write(output->context, bytes);
}

static PhResultCode hello_event(void *user_data, PhStr topic, PhBytes payload) {
    struct hello *hello = (struct hello *)user_data;
    PhStr target = LITERAL("");
    PhStr message = LITERAL("event");
    (void)topic;
    (void)payload;
    if (hello->host->log_max_level(hello->ctx) < PH_LOG_LEVEL_DEBUG) {
        return PH_RESULT_OK;
    }
    return hello->host->log(hello->ctx, PH_LOG_LEVEL_DEBUG, target, message);
}

static void hello_destroy(void *user_data) {
    (void)user_data;
}

static bool count_plugin(void *user_data, const PhPluginInfo *info) {
    size_t *count = (size_t *)user_data;
    if (info->struct_size >= sizeof(PhPluginInfo)) {
        *count += 1;
    }
    return true;
}

static PhResultCode hello_init(PhHostContext *ctx, const PhHostServices *host,
                               void **out_plugin_data) {
    PhStr name = LITERAL("hello");
    PhStr topic = LITERAL("*");
    PhHandle handle = PH_INVALID_HANDLE;
    size_t plugins = 0;
    PhResultCode code;
    if (ctx == NULL || host == NULL || out_plugin_data == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    if (host->abi_major != PH_ABI_VERSION_MAJOR || host->struct_size < sizeof(PhHostServices)) {
        return PH_RESULT_ERROR;
    }
    HELLO.ctx = ctx;
    HELLO.host = host;
    code = host->register_command(ctx, name, hello_command, &HELLO, hello_destroy, &handle);
    if (code != PH_RESULT_OK) {
        return code;
    }
    code = host->subscribe(ctx, topic, hello_event, &HELLO, NULL, NULL);
    if (code != PH_RESULT_OK) {
        return code;
    }
    code = host->enumerate_plugins(ctx, count_plugin, &plugins);
    if (code != PH_RESULT_OK) {
        return code;
    }
    *out_plugin_data = &HELLO;
    return PH_RESULT_OK;
}

static PhResultCode hello_shutdown(void *plugin_data) {
    return plugin_data == &HELLO ? PH_RESULT_OK : PH_RESULT_INVALID_ARGUMENT;
}

static PhResultCode hello_enumerate_commands(void *plugin_data, PhCommandInfoCallback callback,
                                             void *user_data) {
    PhCommandInfo info = {sizeof(PhCommandInfo), LITERAL("hello"), LITERAL("Greets"), LITERAL("")};
    (void)plugin_data;
    if (callback == NULL) {
        return PH_RESULT_NULL_POINTER;
    }
    (void)callback(user_data, &info);
    return PH_RESULT_OK;
}

static const PhPluginVtable VTABLE = {
    sizeof(PhPluginVtable),
    hello_init,
    hello_shutdown,
    hello_enumerate_commands,
    NULL,
    NULL,
};

static const PhPluginDescriptor DESCRIPTOR = {
    PH_ABI_VERSION_MAJOR,
    PH_ABI_VERSION_MINOR,
    sizeof(PhPluginDescriptor),
    LITERAL("hello"),
    LITERAL("0.1.0"),
    LITERAL("Greets people"),
    &VTABLE,
    NULL, /* provides (ABI 1.3): no interfaces */
    0,
    NULL, /* requires */
    0,
};

const PhPluginDescriptor *plughost_plugin_entry(void) {
    PhEntryPoint self = plughost_plugin_entry;
    (void)self;
    return &DESCRIPTOR;
}
