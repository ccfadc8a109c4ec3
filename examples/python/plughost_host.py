"""plughost_host: Python bindings of the plughost host's C library, with ctypes only.

The C API is host/capi/include/plughost_host.h (the reference: ownership, threads, result codes
of each function); this module declares it for ctypes and wraps it in a `Host` class.

What a binding to a C library that calls back must get right, and how this one does it:

- Strings are (pointer, length) views of UTF-8 (`PhStr`), not NUL-terminated C strings: build
  them from `bytes` objects that stay alive for the call (`_Views` keeps them).
- C's `bool` is one byte: ctypes' `c_bool`, never `c_int`.
- A ctypes callback object must stay alive as long as the library may call it: the host keeps a
  reference to each until the library calls the registration's `destroy`.
- A Python exception must never unwind into native code, and ctypes does not give a callback
  that raised a defined return value: it prints "Exception ignored on calling ctypes callback
  function" and returns whatever bytes were in the return slot (a `bool` of 124 has been seen).
  The library survives that (it reads a `bool` as true only when the byte is exactly 1, and an
  unknown result code as an error), but the program would lose the exception. So every callback
  here runs inside `_guarded`, which catches everything, returns a defined value (false: stop;
  `PH_RESULT_ERROR`), and keeps the exception; the method that made the native call raises it
  again once the call has returned. A callback that runs on another thread (an event published
  by a plugin's own thread) hands its exception to `sys.unraisablehook` instead.
"""

import ctypes
import os
import sys
import threading

# Result codes (plughost.h, PH_RESULT_*).
OK = 0
ERROR = 1
INVALID_ARGUMENT = 2
NULL_POINTER = 3
INVALID_UTF8 = 4
UNKNOWN_HANDLE = 5
NOT_FOUND = 7
PANICKED = 8
SHUT_DOWN = 10
IO = 11

# Log levels (PH_LOG_LEVEL_*).
LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE = range(6)


class PhStr(ctypes.Structure):
    """A borrowed UTF-8 string: pointer and length (plughost.h)."""

    _fields_ = [("ptr", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]

    def to_bytes(self):
        return ctypes.string_at(self.ptr, self.len) if self.len else b""

    def to_str(self):
        return self.to_bytes().decode("utf-8")


class PhBytes(PhStr):
    """Borrowed bytes: pointer and length; the same layout as PhStr."""


class PhPluginInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("abi_major", ctypes.c_uint16),
        ("abi_minor", ctypes.c_uint16),
        ("name", PhStr),
        ("version", PhStr),
        ("description", PhStr),
        ("path", PhStr),
    ]


class PhCommandInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("name", PhStr),
        ("description", PhStr),
        ("usage", PhStr),
    ]


c_void_p = ctypes.c_void_p
c_bool = ctypes.c_bool
c_uint32 = ctypes.c_uint32

OUTPUT_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_void_p, PhBytes)
ERROR_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, PhStr)
REFUSED_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, PhStr, PhStr)
LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, PhStr, PhStr, PhStr)
PLUGIN_INFO_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_void_p, ctypes.POINTER(PhPluginInfo))
COMMAND_INFO_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_void_p, ctypes.POINTER(PhCommandInfo))
EVENT_CALLBACK = ctypes.CFUNCTYPE(c_uint32, c_void_p, PhStr, PhBytes)
DESTROY_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p)


def load_library(path):
    """Opens libplughost_host and declares each function's signature."""
    lib = ctypes.CDLL(os.fspath(path))
    host_p = c_void_p
    signatures = {
        "ph_host_new": ([ctypes.POINTER(host_p)], c_uint32),
        "ph_host_new_with_log": (
            [c_uint32, LOG_CALLBACK, c_void_p, DESTROY_CALLBACK, ctypes.POINTER(host_p)],
            c_uint32,
        ),
        "ph_host_free": ([host_p], None),
        "ph_host_shutdown": ([host_p], c_uint32),
        "ph_host_set_config": (
            [host_p, PhStr, ERROR_CALLBACK, c_void_p, ctypes.POINTER(c_bool)],
            c_uint32,
        ),
        "ph_host_set_allow_insecure": ([host_p, c_bool], c_uint32),
        "ph_host_load_dir": ([host_p, PhBytes, REFUSED_CALLBACK, c_void_p], c_uint32),
        "ph_host_load_file": ([host_p, PhBytes, REFUSED_CALLBACK, c_void_p], c_uint32),
        "ph_host_result_message": ([c_uint32], PhStr),
        "ph_host_run": (
            [
                host_p,
                PhStr,
                ctypes.POINTER(PhStr),
                ctypes.c_size_t,
                OUTPUT_CALLBACK,
                ERROR_CALLBACK,
                c_void_p,
            ],
            c_uint32,
        ),
        "ph_host_publish": ([host_p, PhStr, PhBytes], c_uint32),
        "ph_host_subscribe": (
            [
                host_p,
                PhStr,
                EVENT_CALLBACK,
                c_void_p,
                DESTROY_CALLBACK,
                ctypes.POINTER(ctypes.c_uint64),
            ],
            c_uint32,
        ),
        "ph_host_unregister": ([host_p, ctypes.c_uint64], c_uint32),
        "ph_host_enumerate_plugins": ([host_p, PLUGIN_INFO_CALLBACK, c_void_p], c_uint32),
        "ph_host_enumerate_commands": (
            [host_p, PhStr, COMMAND_INFO_CALLBACK, c_void_p],
            c_uint32,
        ),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


class PlughostError(Exception):
    """A call of the C library failed: `code` is its PH_RESULT_* code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class _Views:
    """PhStr/PhBytes views of Python strings, and the bytes they point into, kept alive."""

    def __init__(self):
        self._keep = []

    def bytes(self, data, kind=PhBytes):
        data = bytes(data)
        buffer = ctypes.create_string_buffer(data, len(data))
        self._keep.append(buffer)
        return kind(ctypes.cast(buffer, ctypes.POINTER(ctypes.c_uint8)), len(data))

    def str(self, text):
        return self.bytes(text.encode("utf-8"), PhStr)


# The exception a guarded callback caught, per thread, while a method of Host waits for the
# native call that runs it.
_pending = threading.local()


def _guarded(default, function):
    """`function` as a callback that never lets an exception reach native code: it returns
    `default` instead, and keeps the exception for the method waiting on this thread (or gives
    it to sys.unraisablehook when none is)."""

    def callback(*args):
        try:
            return function(*args)
        except BaseException as exception:  # noqa: B036 - everything, KeyboardInterrupt too
            if getattr(_pending, "waiting", False):
                if getattr(_pending, "exception", None) is None:
                    _pending.exception = exception
            else:
                sys.unraisablehook(
                    _Unraisable(exception, "in a plughost callback on another thread", function)
                )
            return default

    return callback


class _Unraisable:
    """What sys.unraisablehook expects."""

    def __init__(self, exception, message, obj):
        self.exc_type = type(exception)
        self.exc_value = exception
        self.exc_traceback = exception.__traceback__
        self.err_msg = message
        self.object = obj


class _NativeCall:
    """Brackets a native call: afterwards, raises what a guarded callback caught during it."""

    def __enter__(self):
        self.outer = getattr(_pending, "waiting", False)
        if not self.outer:
            _pending.exception = None
        _pending.waiting = True
        return self

    def __exit__(self, kind, value, traceback):
        _pending.waiting = self.outer
        if self.outer:
            return False
        caught, _pending.exception = _pending.exception, None
        if caught is not None and kind is None:
            raise caught
        return False


class Host:
    """A plughost host, through the C library at `library` (a path or a loaded CDLL).

    `log(level, plugin, target, message)`, if given, receives the plugins' log records at
    `log_level` or more severe, on the plugin's thread. Use it as a context manager, or call
    close(): that shuts the plugins down and frees the host.
    """

    def __init__(self, library, log=None, log_level=LOG_WARN):
        self._lib = library if isinstance(library, ctypes.CDLL) else load_library(library)
        self._host = c_void_p()
        self._callbacks = {}  # user_data key -> ctypes callback objects, until `destroy`
        self._next_key = 1
        self._lock = threading.Lock()
        self._destroy = DESTROY_CALLBACK(_guarded(None, self._on_destroy))
        if log is None:
            code = self._lib.ph_host_new(ctypes.byref(self._host))
        else:

            def on_log(_user_data, level, plugin, target, message):
                log(level, plugin.to_str(), target.to_str(), message.to_str())

            key = self._keep(LOG_CALLBACK(_guarded(None, on_log)))
            code = self._lib.ph_host_new_with_log(
                log_level, self._callbacks[key][0], key, self._destroy, ctypes.byref(self._host)
            )
        self._check(code, "ph_host_new")

    # -- plumbing ------------------------------------------------------------------------------

    def _keep(self, *callbacks):
        """Keeps ctypes callback objects alive until `destroy` is called with the returned key."""
        with self._lock:
            key = self._next_key
            self._next_key += 1
            self._callbacks[key] = callbacks
        return key

    def _on_destroy(self, user_data):
        with self._lock:
            self._callbacks.pop(user_data, None)

    def _message(self, code):
        return self._lib.ph_host_result_message(code).to_str()

    def _check(self, code, what, message=None):
        if code != OK:
            raise PlughostError(code, message or "%s: %s" % (what, self._message(code)))

    def _live(self):
        if not self._host:
            raise PlughostError(NULL_POINTER, "the host is closed")
        return self._host

    # -- [main-thread] -------------------------------------------------------------------------

    def set_config(self, toml_text):
        """Sets the plugins' configuration (TOML); returns its `allow_insecure` value."""
        errors = []
        on_error = ERROR_CALLBACK(_guarded(None, lambda _u, code, m: errors.append(m.to_str())))
        allow = c_bool(False)
        views = _Views()
        with _NativeCall():
            code = self._lib.ph_host_set_config(
                self._live(), views.str(toml_text), on_error, None, ctypes.byref(allow)
            )
        self._check(code, "set_config", errors[0] if errors else None)
        return allow.value

    def set_allow_insecure(self, allow):
        self._check(self._lib.ph_host_set_allow_insecure(self._live(), bool(allow)), "allow")

    def load_dir(self, path):
        """Loads every plugin library of a folder; returns the refused ones as (path, reason)."""
        refused = []
        on_refused = REFUSED_CALLBACK(
            _guarded(None, lambda _u, p, r: refused.append((p.to_str(), r.to_str())))
        )
        views = _Views()
        with _NativeCall():
            code = self._lib.ph_host_load_dir(
                self._live(), views.bytes(os.fsencode(path)), on_refused, None
            )
        if code != OK:
            self._check(code, "load_dir", ": ".join(refused[-1]) if refused else None)
        return refused

    def load_file(self, path):
        """Loads one plugin library; raises PlughostError with the reason if it is refused."""
        refused = []
        on_refused = REFUSED_CALLBACK(
            _guarded(None, lambda _u, p, r: refused.append("%s: %s" % (p.to_str(), r.to_str())))
        )
        views = _Views()
        with _NativeCall():
            code = self._lib.ph_host_load_file(
                self._live(), views.bytes(os.fsencode(path)), on_refused, None
            )
        self._check(code, "load_file", refused[0] if refused else None)

    def shutdown(self):
        self._check(self._lib.ph_host_shutdown(self._live()), "shutdown")

    def close(self):
        """Shuts the plugins down and frees the host (idempotent)."""
        if self._host:
            host, self._host = self._host, c_void_p()
            with _NativeCall():
                self._lib.ph_host_free(host)

    def __enter__(self):
        return self

    def __exit__(self, *_exception):
        self.close()
        return False

    # -- [thread-safe] -------------------------------------------------------------------------

    def run(self, command, args=(), output=None):
        """Runs a command. `output(data)` receives its output piece by piece (bytes) and
        returns True to go on; without it, the output is returned as bytes."""
        pieces = []
        if output is None:

            def output(data):
                pieces.append(data)
                return True

        errors = []
        on_output = OUTPUT_CALLBACK(
            _guarded(False, lambda _u, data: output(data.to_bytes()) is True)
        )
        on_error = ERROR_CALLBACK(
            _guarded(None, lambda _u, code, m: errors.append((code, m.to_str())))
        )
        views = _Views()
        array = (PhStr * max(len(args), 1))(*[views.str(a) for a in args])
        with _NativeCall():
            code = self._lib.ph_host_run(
                self._live(), views.str(command), array, len(args), on_output, on_error, None
            )
        if code != OK:
            reported, message = errors[0] if errors else (code, self._message(code))
            error = PlughostError(code, message)
            error.command_code = reported
            raise error
        return b"".join(pieces)

    def publish(self, topic, payload=b""):
        views = _Views()
        with _NativeCall():
            code = self._lib.ph_host_publish(self._live(), views.str(topic), views.bytes(payload))
        self._check(code, "publish(%r)" % topic)

    def subscribe(self, topic, handler):
        """Calls `handler(topic, payload)` for each event of `topic` (or "*"), on the
        publisher's thread; returns the subscription's handle."""

        def on_event(_user_data, event_topic, payload):
            handler(event_topic.to_str(), payload.to_bytes())
            return OK

        key = self._keep(EVENT_CALLBACK(_guarded(ERROR, on_event)))
        handle = ctypes.c_uint64()
        views = _Views()
        with _NativeCall():
            code = self._lib.ph_host_subscribe(
                self._live(),
                views.str(topic),
                self._callbacks[key][0],
                key,
                self._destroy,
                ctypes.byref(handle),
            )
        # On failure the library has already called `destroy` (which forgot the callback).
        self._check(code, "subscribe(%r)" % topic)
        return handle.value

    def unregister(self, handle):
        with _NativeCall():
            code = self._lib.ph_host_unregister(self._live(), handle)
        self._check(code, "unregister(%d)" % handle)

    def plugins(self, callback):
        """Calls `callback(info)` per active plugin until it returns something other than True;
        `info` is a dict (name, version, description, path, abi)."""

        def on_plugin(_user_data, info):
            info = info.contents
            return (
                callback(
                    {
                        "name": info.name.to_str(),
                        "version": info.version.to_str(),
                        "description": info.description.to_str(),
                        "path": info.path.to_str(),
                        "abi": (info.abi_major, info.abi_minor),
                    }
                )
                is True
            )

        on_plugin = PLUGIN_INFO_CALLBACK(_guarded(False, on_plugin))
        with _NativeCall():
            code = self._lib.ph_host_enumerate_plugins(self._live(), on_plugin, None)
        self._check(code, "enumerate_plugins")

    def commands(self, plugin, callback):
        """Calls `callback(name, description, usage)` per command of `plugin` until it returns
        something other than True."""

        def on_command(_user_data, info):
            info = info.contents
            return (
                callback(info.name.to_str(), info.description.to_str(), info.usage.to_str())
                is True
            )

        on_command = COMMAND_INFO_CALLBACK(_guarded(False, on_command))
        views = _Views()
        with _NativeCall():
            code = self._lib.ph_host_enumerate_commands(
                self._live(), views.str(plugin), on_command, None
            )
        self._check(code, "enumerate_commands(%r)" % plugin)
