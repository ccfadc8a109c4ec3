#!/usr/bin/env python3
"""embed.py: a Python program that embeds the plughost host through its C library (ctypes).

    python3 examples/python/embed.py [--library LIB] PLUGINS_DIR TEXT_FILE

LIB is libplughost_host.so (default: target/release/ of this repository, or $PLUGHOST_LIBRARY).
Build it with `cargo build --release`. The program

1. loads every plugin of PLUGINS_DIR (wordfreq, journal, inventory, checksum...);
2. enumerates the plugins with a Python callback that stops after the first two;
3. subscribes a Python callback to the event `wordfreq.totals`;
4. runs `wordfreq --top 5 TEXT_FILE`, whose output (section `== wordfreq --top 5`) is byte for
   byte what `plughost run wordfreq --top 5 TEXT_FILE` prints;
5. shows that a Python exception inside a callback never unwinds into native code: the guarded
   callback catches it, returns a defined value, and the exception is raised again in Python
   once the native call has returned; and that a raw ctypes callback that raises (ctypes then
   returns garbage) does not harm the host.

tests/tests/embed_python.rs runs it and compares it with the `plughost` binary.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plughost_host  # noqa: E402  (the binding next to this file)
from plughost_host import Host, PlughostError  # noqa: E402


def default_library():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get(
        "PLUGHOST_LIBRARY",
        os.path.join(here, "..", "..", "target", "release", "libplughost_host.so"),
    )


def log(level, plugin, target, message):
    names = {1: "error", 2: "warn", 3: "info", 4: "debug", 5: "trace"}
    print("[%s %s] %s" % (names.get(level, level), plugin, message), file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=default_library())
    parser.add_argument("plugins")
    parser.add_argument("text")
    options = parser.parse_args()
    out = sys.stdout.buffer

    with Host(options.library, log=log) as host:
        for path, reason in host.load_dir(options.plugins):
            print("refused: %s: %s" % (path, reason), file=sys.stderr)

        # 2. An enumeration that stops early: the callback returns False after two plugins.
        seen = []

        def first_two(info):
            seen.append(info)
            return len(seen) < 2

        host.plugins(first_two)
        out.write(b"== plugins (the first 2)\n")
        for info in seen:
            commands = []
            host.commands(info["name"], lambda name, _d, _u: commands.append(name) or True)
            line = "%s %s ABI %d.%d: %s\n" % (
                info["name"],
                info["version"],
                info["abi"][0],
                info["abi"][1],
                " ".join(commands),
            )
            out.write(line.encode("utf-8"))

        # 3. A Python callback subscribed to events; it runs on the publisher's thread.
        events = []
        handle = host.subscribe(
            "wordfreq.totals", lambda topic, payload: events.append((topic, payload))
        )

        # 4. The command; its output goes straight to standard output.
        out.write(b"== wordfreq --top 5\n")
        out.flush()

        def write(data):
            out.write(data)
            return True

        host.run("wordfreq", ["--top", "5", options.text], output=write)
        out.flush()
        host.unregister(handle)

        out.write(b"== events\n")
        for topic, payload in events:
            out.write(b"%s %s\n" % (topic.encode("utf-8"), payload))

        # 5. Exceptions in callbacks.
        out.write(b"== exceptions\n")

        def broken_writer(data):
            raise ValueError("the writer failed on %d bytes" % len(data))

        try:
            host.run("wordfreq", ["--top", "1", options.text], output=broken_writer)
            out.write(b"output callback: no exception?\n")
        except ValueError as error:
            out.write(b"output callback raised, re-raised after run: %s\n" % str(error).encode())

        def broken_handler(topic, payload):
            raise KeyError(topic)

        handle = host.subscribe("embed.event", broken_handler)
        try:
            host.publish("embed.event", b"x")
            out.write(b"event callback: no exception?\n")
        except KeyError as error:
            message = b"event callback raised, re-raised after publish: KeyError %s\n"
            out.write(message % str(error).encode())
        host.unregister(handle)

        # A raw ctypes callback, without the guard: ctypes prints the exception on stderr and
        # returns garbage as the callback's bool. The host reads it as "stop" (any byte but 1),
        # and goes on as if nothing happened.
        calls = []

        def unguarded(_user_data, _info):
            calls.append(1)
            raise RuntimeError("an unguarded ctypes callback raised")

        raw = plughost_host.PLUGIN_INFO_CALLBACK(unguarded)
        code = host._lib.ph_host_enumerate_plugins(host._host, raw, None)
        print("unguarded callback: %d call(s)" % len(calls), file=sys.stderr)
        out.write(b"unguarded callback: enumeration returned %d, the host goes on: " % code)
        after = host.run("wordfreq", ["--top", "1", options.text])
        out.write(b"wordfreq --top 1 -> %s\n" % after.strip())

        # A failed command is a PlughostError with the plugin's message.
        try:
            host.run("wordfreq", ["/no/such/file.txt"])
        except PlughostError as error:
            out.write(b"failed command: code %d: %s\n" % (error.code, str(error).encode()))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
