//! The messages between the host and an isolated plugin's child process, and their framing.
//!
//! Each message is one frame on the socket: its length (4 bytes, little-endian), then the message
//! encoded with postcard. Strings and byte strings are borrowed from the frame when decoded, so
//! a chunk of output is copied once, from the socket into the reader's buffer. A frame from the
//! child is at most [`MAX_FRAME`] bytes (the host's are as long as what they carry: an event's
//! payload, a command's arguments); command output travels in chunks of at most [`CHUNK`] bytes,
//! so either side's memory stays bounded whatever a command writes.
//!
//! # The conversation
//!
//! Both sides send requests and wait for their answer, serving the other side's requests
//! meanwhile: requests nest, and the answer to a request always comes after the answers of the
//! requests made inside it. The host asks ([`Down`]) for `init`, a command, an event delivery or
//! the `shutdown`, and the child answers with [`Up::Done`]; the child asks ([`Up`]) for the host
//! services that need an answer (register, subscribe, publish) and the host answers with
//! [`Down::Answer`]. Log records, output and unregistrations need no answer.
//!
//! A second socket carries, one-way from the child to the host, the messages of the plugin's
//! own threads: [`Up::Log`], [`Up::Publish`] (with no answer there) and [`Up::Unregister`],
//! the only messages valid on it. The host reads it on a thread of its own, as they come.
//!
//! Every message from the child is validated on receipt ([`decode_up`]): a frame that is too
//! long, truncated, or does not decode is a [`WireError`], and the host faults the plugin.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The largest frame the host accepts from a child: the length of its message, in bytes. A
/// plugin's own event may be that large (in-process there is no limit); a larger message faults
/// it. The host's buffer grows with the bytes that came, not with the length a frame states, and
/// shrinks back after a large frame (see [`FrameReader`]).
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// The largest chunk of command output in one [`Up::Output`].
pub(crate) const CHUNK: usize = 64 * 1024;

/// The size of a [`FrameReader`]'s buffer when it is made: two chunks of output.
const FIRST_SIZE: usize = 2 * CHUNK;

/// A [`FrameReader`]'s buffer larger than this shrinks back to [`FIRST_SIZE`] once it is empty.
const SHRINK_ABOVE: usize = 1 << 20;

/// A message from the host to the child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Down<'a> {
    /// Call the plugin's `init`, with this configuration (a TOML document whose only table is
    /// the plugin's `[plugins.NAME]`). Answered with [`Up::Done`].
    Init {
        /// The configuration, as TOML text.
        config: &'a str,
    },
    /// The host does not isolate this plugin after all: exit without calling `init`.
    Bye,
    /// Run a command. Answered with [`Up::Done`], after its output.
    Call {
        /// The command name.
        command: &'a str,
        /// Its arguments.
        args: Vec<&'a str>,
    },
    /// Deliver an event to one subscription of the plugin. Answered with [`Up::Done`].
    Deliver {
        /// The subscription's handle in the child.
        handle: u64,
        /// The event's topic.
        topic: &'a str,
        /// Its payload.
        #[serde(borrow)]
        payload: &'a [u8],
    },
    /// The answer to the child's request: a result code.
    Answer {
        /// The `PhResult` code.
        code: u32,
    },
    /// Call the plugin's `shutdown`, then exit. Answered with [`Up::Done`].
    Shutdown,
    /// The answer to [`Up::EnumeratePlugins`]: the host's active plugins, in load order.
    Plugins {
        /// Each plugin as the enumeration shows it.
        #[serde(borrow)]
        plugins: Vec<PluginRow<'a>>,
    },
    /// The answer to [`Up::EnumerateCommands`]: a result code and, if it is `OK`, the commands
    /// as (name, description, usage), in registration order.
    Commands {
        /// The `PhResult` code.
        code: u32,
        /// The commands.
        #[serde(borrow)]
        commands: Vec<(&'a str, &'a str, &'a str)>,
    },
}

/// A plugin as the host's enumeration shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PluginRow<'a> {
    pub(crate) name: &'a str,
    pub(crate) version: &'a str,
    pub(crate) description: &'a str,
    pub(crate) path: &'a str,
    pub(crate) abi: (u16, u16),
}

/// A message from the child to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Up<'a> {
    /// The child opened the library and its checks passed: this is its descriptor. First
    /// message of every child, or [`Up::Refused`].
    Hello {
        /// The plugin's name.
        name: &'a str,
        /// Its version.
        version: &'a str,
        /// Its description.
        description: &'a str,
        /// The ABI version it was built for.
        abi: (u16, u16),
        /// Whether abi_stable's layout check ran (and passed).
        layout_checked: bool,
        /// The interfaces it declares, as (`id major.minor`, provided, optional).
        #[serde(borrow)]
        interfaces: Vec<(&'a str, bool, bool)>,
    },
    /// The child refused the library; the message names the file and the cause.
    Refused {
        /// One line.
        message: &'a str,
    },
    /// A log record, already filtered by level in the child.
    Log {
        /// The `PhLogLevel`.
        level: u32,
        /// The record's target (the plugin's name, or `NAME::...`).
        target: &'a str,
        /// The message.
        message: &'a str,
    },
    /// A chunk of the running command's output, at most [`CHUNK`] bytes.
    Output {
        /// The bytes.
        #[serde(borrow)]
        bytes: &'a [u8],
    },
    /// The plugin registered a command. Answered with [`Down::Answer`].
    Register {
        /// The registration's handle in the child.
        handle: u64,
        /// The command name.
        name: &'a str,
        /// Its description.
        description: &'a str,
        /// Its usage.
        usage: &'a str,
    },
    /// The plugin subscribed to a topic. Answered with [`Down::Answer`].
    Subscribe {
        /// The registration's handle in the child.
        handle: u64,
        /// The topic (or `*`).
        topic: &'a str,
    },
    /// The plugin ended a registration (no answer).
    Unregister {
        /// The registration's handle in the child.
        handle: u64,
    },
    /// The plugin published an event. On the conversation's socket, answered with
    /// [`Down::Answer`] once the host's subscribers received it; on the socket of the plugin's
    /// threads, not answered.
    Publish {
        /// The topic.
        topic: &'a str,
        /// The payload.
        #[serde(borrow)]
        payload: &'a [u8],
    },
    /// The plugin enumerates the plugins. Answered with [`Down::Plugins`].
    EnumeratePlugins,
    /// The plugin enumerates the commands of the plugin `plugin`. Answered with
    /// [`Down::Commands`].
    EnumerateCommands {
        /// The plugin's name.
        plugin: &'a str,
    },
    /// The answer to the host's request: a result code and, for a failed call, the message.
    Done {
        /// The `PhResult` code.
        code: u32,
        /// The error message, for a code other than `OK`.
        message: Option<&'a str>,
    },
}

/// Why a frame could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The peer closed its end (it exited, or was killed).
    #[error("closed")]
    Closed,
    /// No frame came in time.
    #[error("timed out")]
    TimedOut,
    /// A frame longer than [`MAX_FRAME`].
    #[error("a message of {0} bytes, over the limit of {MAX_FRAME}")]
    TooLong(usize),
    /// The frame is not a valid message.
    #[error("a malformed message ({0})")]
    Malformed(postcard::Error),
    /// The stream failed.
    #[error("{0}")]
    Io(io::Error),
}

/// Decodes a frame from the child. Never panics, whatever the bytes.
pub(crate) fn decode_up(frame: &[u8]) -> Result<Up<'_>, WireError> {
    decode(frame)
}

/// Decodes a frame from the host.
pub(crate) fn decode_down(frame: &[u8]) -> Result<Down<'_>, WireError> {
    decode(frame)
}

fn decode<'a, T: Deserialize<'a>>(frame: &'a [u8]) -> Result<T, WireError> {
    match postcard::take_from_bytes(frame) {
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(WireError::Malformed(
            postcard::Error::DeserializeBadEncoding,
        ))
        .inspect_err(|_| log::debug!("{} trailing bytes after a message", rest.len())),
        Err(e) => Err(WireError::Malformed(e)),
    }
}

/// Encodes `message` as one frame into `buffer` (cleared first).
pub(crate) fn encode<T: Serialize>(message: &T, buffer: &mut Vec<u8>) {
    buffer.clear();
    buffer.extend_from_slice(&[0; 4]);
    // Writing into a `Vec` cannot fail: postcard fails only for types it cannot encode, and
    // these messages have none.
    let encoded = postcard::to_extend(message, std::mem::take(buffer));
    *buffer = encoded.unwrap_or_else(|e| unreachable!("encoding a message: {e}"));
    let len = (buffer.len() - 4) as u32;
    buffer[..4].copy_from_slice(&len.to_le_bytes());
}

/// Encodes [`Up::Output`] with `bytes` as one frame into `buffer`: the same bytes as
/// [`encode`], made with one copy of `bytes` (postcard's writer into a `Vec` takes a byte at a
/// time, which the hot path of command output cannot afford).
pub(crate) fn encode_output(bytes: &[u8], buffer: &mut Vec<u8>) {
    // The message's head, `Output` with no bytes: its variant, then the length 0 (one byte).
    let mut head = Vec::new();
    encode(&Up::Output { bytes: &[] }, &mut head);
    head.pop();
    buffer.clear();
    buffer.extend_from_slice(&head);
    // postcard's length: LEB128, 7 bits a byte, least significant first.
    let mut len = bytes.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            buffer.push(byte);
            break;
        }
        buffer.push(byte | 0x80);
    }
    buffer.extend_from_slice(bytes);
    let frame = (buffer.len() - 4) as u32;
    buffer[..4].copy_from_slice(&frame.to_le_bytes());
}

/// Writes `message` as one frame, through `scratch`.
pub(crate) fn send<T: Serialize>(
    stream: &mut impl Write,
    scratch: &mut Vec<u8>,
    message: &T,
) -> io::Result<()> {
    encode(message, scratch);
    stream.write_all(scratch)
}

/// Reads frames from a stream into one buffer. The buffer grows as a frame's bytes arrive (at
/// most doubling per read, so a frame that states a length it never sends costs no more than
/// what came), and shrinks back to its first size once it is empty after a frame larger than
/// [`SHRINK_ABOVE`].
pub(crate) struct FrameReader {
    buffer: Vec<u8>,
    /// The unread bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    /// The longest frame it accepts.
    limit: usize,
}

impl FrameReader {
    /// A reader of the child's frames, at most [`MAX_FRAME`] bytes each.
    pub(crate) fn new() -> FrameReader {
        FrameReader::with_limit(MAX_FRAME)
    }

    /// A reader of the host's frames, in the child: any length a frame can state. The host is
    /// trusted, and what it sends has no limit of its own (an event's payload, a command's
    /// arguments, the configuration: docs/abi.md), so a child that refused a long frame would
    /// fault its plugin for another's event.
    pub(crate) fn from_host() -> FrameReader {
        // Less the length's 4 bytes, so that a frame's length with them fits a 32-bit `usize`.
        FrameReader::with_limit(u32::MAX as usize - 4)
    }

    fn with_limit(limit: usize) -> FrameReader {
        FrameReader {
            buffer: vec![0; FIRST_SIZE],
            start: 0,
            end: 0,
            limit,
        }
    }

    /// The next frame's bytes (its message, without the length), valid until the next call.
    /// A read that times out (the stream's read timeout) is [`WireError::TimedOut`].
    pub(crate) fn next(&mut self, stream: &mut impl Read) -> Result<&[u8], WireError> {
        if self.start == self.end && self.buffer.len() > SHRINK_ABOVE {
            // The large frame that grew it was read: memory goes back.
            self.buffer = vec![0; FIRST_SIZE];
            self.start = 0;
            self.end = 0;
        }
        let len = loop {
            if let Some(head) = self.buffer[self.start..self.end].first_chunk::<4>() {
                let len = u32::from_le_bytes(*head) as usize;
                if len > self.limit {
                    return Err(WireError::TooLong(len));
                }
                if self.end - self.start >= 4 + len {
                    break len;
                }
                self.make_room(4 + len);
            } else {
                self.make_room(4);
            }
            self.fill(stream)?;
        };
        let frame = self.start + 4..self.start + 4 + len;
        self.start = frame.end;
        Ok(&self.buffer[frame])
    }

    /// Makes room toward a frame of `needed` bytes from `start`: moves the unread bytes to the
    /// front, and grows the buffer to at most twice what it holds, so that its size follows the
    /// bytes that came rather than the length a frame states.
    fn make_room(&mut self, needed: usize) {
        if self.start.saturating_add(needed) > self.buffer.len() {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if needed > self.buffer.len() && self.end == self.buffer.len() {
                let grown = needed.min(self.buffer.len().saturating_mul(2));
                self.buffer.resize(grown, 0);
            }
        }
    }

    fn fill(&mut self, stream: &mut impl Read) -> Result<(), WireError> {
        loop {
            match stream.read(&mut self.buffer[self.end..]) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(WireError::TimedOut)
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(WireError::Closed)
                }
                Err(e) => return Err(WireError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame_of(message: &Up<'_>) -> Vec<u8> {
        let mut buffer = Vec::new();
        encode(message, &mut buffer);
        buffer
    }

    fn samples() -> Vec<Vec<u8>> {
        [
            Up::Hello {
                name: "demo",
                version: "1.0.0",
                description: "a plugin",
                abi: (1, 3),
                layout_checked: true,
                interfaces: vec![("plughost.kv 1.0", false, true)],
            },
            Up::Log {
                level: 3,
                target: "demo",
                message: "hello",
            },
            Up::Output { bytes: b"output" },
            Up::Register {
                handle: 7,
                name: "demo-go",
                description: "d",
                usage: "[ARG]",
            },
            Up::Publish {
                topic: "demo.topic",
                payload: &[0, 1, 2, 255],
            },
            Up::Done {
                code: 0,
                message: None,
            },
        ]
        .iter()
        .map(frame_of)
        .collect()
    }

    #[test]
    fn messages_round_trip_through_frames() {
        let message = Down::Call {
            command: "demo-go",
            args: vec!["a", "", "ü"],
        };
        let mut bytes = Vec::new();
        encode(&message, &mut bytes);
        encode(&Down::Shutdown, &mut Vec::new());
        let mut second = Vec::new();
        encode(&Down::Shutdown, &mut second);
        bytes.extend_from_slice(&second);
        let mut reader = FrameReader::new();
        let mut stream = &bytes[..];
        assert_eq!(
            decode_down(reader.next(&mut stream).unwrap()).unwrap(),
            message
        );
        assert_eq!(
            decode_down(reader.next(&mut stream).unwrap()).unwrap(),
            Down::Shutdown
        );
        assert!(matches!(reader.next(&mut stream), Err(WireError::Closed)));
    }

    #[test]
    fn output_frames_are_those_of_the_encoder() {
        for len in [0, 1, 127, 128, 300, 16_383, 16_384, CHUNK] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (mut fast, mut reference) = (Vec::new(), Vec::new());
            encode_output(&bytes, &mut fast);
            encode(&Up::Output { bytes: &bytes }, &mut reference);
            assert_eq!(fast, reference, "{len} bytes");
        }
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_before_it_is_read() {
        let mut bytes = ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let error = FrameReader::new().next(&mut &bytes[..]).unwrap_err();
        assert!(matches!(error, WireError::TooLong(n) if n == MAX_FRAME + 1));
    }

    #[test]
    fn a_frame_that_states_a_length_it_never_sends_costs_what_came() {
        // The head of a frame of 60 MiB, then 1000 bytes of it, then the end.
        let mut bytes = ((60u32 << 20).to_le_bytes()).to_vec();
        bytes.extend_from_slice(&[7; 1000]);
        let mut reader = FrameReader::new();
        assert!(matches!(
            reader.next(&mut &bytes[..]),
            Err(WireError::Closed)
        ));
        assert_eq!(reader.buffer.len(), FIRST_SIZE);
    }

    #[test]
    fn a_buffer_grows_with_what_came_not_with_what_a_frame_states() {
        // The head of a frame of 60 MiB, then 1 MiB of it, then the end.
        let mut bytes = ((60u32 << 20).to_le_bytes()).to_vec();
        bytes.extend(std::iter::repeat_n(7u8, 1 << 20));
        let mut reader = FrameReader::new();
        assert!(matches!(
            reader.next(&mut &bytes[..]),
            Err(WireError::Closed)
        ));
        assert!(
            reader.buffer.len() <= 2 << 20,
            "{} bytes for 1 MiB that came",
            reader.buffer.len()
        );
    }

    #[test]
    fn a_large_frame_is_read_whole_and_the_buffer_shrinks_back() {
        let payload = vec![5u8; 3 << 20];
        let mut bytes = Vec::new();
        encode(
            &Up::Publish {
                topic: "big",
                payload: &payload,
            },
            &mut bytes,
        );
        let mut small = Vec::new();
        encode(
            &Up::Done {
                code: 0,
                message: None,
            },
            &mut small,
        );
        bytes.extend_from_slice(&small);
        // A stream that gives at most 64 KiB a read, as a socket does.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(64 * 1024);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut stream = Trickle(&bytes);
        let mut reader = FrameReader::new();
        let frame = reader.next(&mut stream).unwrap();
        match decode_up(frame).unwrap() {
            Up::Publish {
                topic,
                payload: got,
            } => {
                assert_eq!((topic, got.len()), ("big", payload.len()));
            }
            other => panic!("{other:?}"),
        }
        assert!(reader.buffer.len() >= 3 << 20);
        assert_eq!(
            decode_up(reader.next(&mut stream).unwrap()).unwrap(),
            Up::Done {
                code: 0,
                message: None
            }
        );
        // Empty after the small frame: the next read starts from a small buffer again.
        assert!(matches!(reader.next(&mut stream), Err(WireError::Closed)));
        assert_eq!(reader.buffer.len(), FIRST_SIZE);
    }

    #[test]
    fn the_child_reads_a_frame_of_the_host_over_the_limit() {
        let payload = vec![3u8; MAX_FRAME + 1];
        let message = Down::Deliver {
            handle: 1,
            topic: "big",
            payload: &payload,
        };
        let mut bytes = Vec::new();
        encode(&message, &mut bytes);
        let mut reader = FrameReader::from_host();
        assert_eq!(
            decode_down(reader.next(&mut &bytes[..]).unwrap()).unwrap(),
            message
        );
    }

    proptest! {
        /// Any bytes from the child are frames and messages, or an error: never a panic, never a
        /// frame over the limit.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut reader = FrameReader::new();
            let mut stream = &bytes[..];
            while let Ok(frame) = reader.next(&mut stream) {
                prop_assert!(frame.len() <= MAX_FRAME);
                let _ = decode_up(frame);
            }
        }

        /// Valid frames with bytes changed, cut or added decode to a message or an error.
        #[test]
        fn mutated_messages_never_panic(
            which in 0usize..6,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut frame = samples().swap_remove(which);
            for (at, byte) in flips {
                let at = 4 + at % (frame.len() - 4);
                frame[at] ^= byte;
            }
            let body = &frame[4..];
            let _ = decode_up(body);
            let _ = decode_up(&body[..cut % (body.len() + 1)]);
            let mut reader = FrameReader::new();
            let _ = reader.next(&mut &frame[..cut % (frame.len() + 1)]);
        }
    }
}
