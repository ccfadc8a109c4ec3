//! Waiting for the other side's next message: poll the socket for a short window, then block.
//!
//! A call into an isolated plugin is a round trip over the socket pair: the host sends a request
//! and waits for the answer; the child answers and waits for the next request. A thread that
//! blocks in `read` gives its core up; on an otherwise idle machine the core then halts, and
//! waking it for the next message costs far more than the message itself (about 30 µs per wake-up
//! on a virtual machine, against 4 to 5 µs for the whole round trip when neither side sleeps). So
//! each side, right after it sent or handled a message (when an answer or the next request is
//! likely to come soon), polls the socket without blocking for at most [`SPIN_WINDOW`] before it
//! blocks in `read`.
//!
//! What spinning costs is bounded, and it stops where it does not pay:
//!
//! - A wait spins at most [`SPIN_WINDOW`], then blocks: a long command costs its waiting host one
//!   window of CPU time, not its whole duration, and a child that idles between calls is blocked
//!   after one window.
//! - After [`MAX_MISSES`] waits in a row that outlasted the window, waits block at once, until a
//!   wait ends within the window again (then spinning would have paid): a plugin called every
//!   millisecond, or a host answered every millisecond, is not spun for in vain.
//! - A spinning thread gives its core to any other thread ready to run there: at once (the peer
//!   may have been woken on this core by the message just sent, and must not wait for the spin),
//!   then every [`YIELD_INTERVAL`].
//! - On a busy machine spinning does not pay (no core halts, so a wake-up is cheap) and it costs:
//!   the spinning thread takes CPU time from others and, having used its share, is served after
//!   them. A spin that lost its core to another thread (a gap between two polls longer than the
//!   window) tells the machine is busy: waits then block at once for [`FIRST_BACKOFF`], twice as
//!   long at each loss that follows soon, up to [`MAX_BACKOFF`]. Spins that keep losing their
//!   core (a saturated machine) are thus tried about once a second; an occasional loss (another
//!   thread ran for a moment) costs a millisecond of blocking waits.
//!
//! Everything else is the blocking read's: a poll that finds data returns it as `read` would, a
//! poll that finds the peer's end closed returns end of file, and an error is the read's error.
//! The socket's read timeout (the host's call timeout) applies to the blocking read after the
//! spin, so a call that hangs still times out, at most [`SPIN_WINDOW`] later than without it.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long a wait polls before it blocks.
///
/// Long enough to cover a short call's answer when the other side has to be woken first (a
/// halted core's wake-up, about 30 µs on a virtual machine, plus the work), short enough that a
/// spin in vain costs about what it saves when it is not: a wait that spins the whole window and
/// then blocks uses at most this much more CPU time, a wait served within it saves one or two
/// wake-ups of about half of it.
pub(crate) const SPIN_WINDOW: Duration = Duration::from_micros(50);

/// After this many waits in a row that outlasted [`SPIN_WINDOW`], waits block without spinning.
///
/// One long wait says little (a command that computes, the first call after a pause); several in
/// a row say the other side keeps a slower pace than the window, and spinning only burns CPU.
pub(crate) const MAX_MISSES: u32 = 4;

/// How often a spinning thread yields its core, after the yield it starts with.
///
/// The scheduler lets a running thread finish its slice, so a thread that spins without yielding
/// keeps another one that was woken on its core waiting for the whole window. A `sched_yield`
/// costs more than the `recv` that polls, so yielding at every poll would slow the noticing of
/// the message; a short call's answer comes within this interval, without a yield in its way.
pub(crate) const YIELD_INTERVAL: Duration = Duration::from_micros(5);

/// After a spin lost its core to another thread, waits block without spinning for this long;
/// the time doubles at each such loss, up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(1);

/// The longest time waits block without spinning after a spin lost its core.
///
/// A spin that loses its core costs its call about one slice of the other thread (a millisecond
/// or so). While the machine stays busy, one spin in this time tells when it is quiet again, for
/// about a thousandth of the time.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// One side's spinning state.
#[derive(Debug)]
pub(crate) struct Spin {
    /// The waits in a row that outlasted the window.
    misses: u32,
    /// When a spin last lost its core, if one did.
    lost: Option<Instant>,
    /// Until when waits block at once, after that loss.
    blocking_until: Option<Instant>,
    /// How long they will, after the next loss.
    backoff: Duration,
}

impl Default for Spin {
    fn default() -> Spin {
        Spin {
            misses: 0,
            lost: None,
            blocking_until: None,
            backoff: FIRST_BACKOFF,
        }
    }
}

impl Spin {
    /// A [`Read`] of `stream` whose reads spin (per this state) before they block.
    pub(crate) fn reader<'a>(&'a mut self, stream: &'a UnixStream) -> Spinning<'a> {
        Spinning { stream, spin: self }
    }

    /// Whether a wait that starts at `now` spins.
    fn spins(&self, now: Instant) -> bool {
        self.misses < MAX_MISSES && self.blocking_until.is_none_or(|until| now >= until)
    }

    /// A wait was served while it spun, at `now`. Served twice as long after the last loss as
    /// the waits blocked for it, the next loss blocks them for [`FIRST_BACKOFF`] again.
    fn served(&mut self, now: Instant) {
        self.misses = 0;
        if self.lost.is_some_and(|lost| now - lost >= self.backoff) {
            self.lost = None;
            self.backoff = FIRST_BACKOFF;
        }
    }

    /// A wait spun the whole window in vain (it blocks next).
    fn missed(&mut self) {
        self.misses = self.misses.saturating_add(1);
    }

    /// A spin lost its core to another thread, until `now`: the machine is busy. Waits block at
    /// once for a while, twice as long as after the last loss.
    fn preempted(&mut self, now: Instant) {
        self.lost = Some(now);
        self.blocking_until = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// A wait blocked (without spinning, or after it) and was served after `waited` in all
    /// (spin and wake-up included): within the window, spinning pays again.
    fn blocked(&mut self, waited: Duration) {
        if waited < SPIN_WINDOW {
            self.misses = 0;
        }
    }
}

/// A socket whose reads poll for at most [`SPIN_WINDOW`] before they block (see the
/// [module](self)).
pub(crate) struct Spinning<'a> {
    stream: &'a UnixStream,
    spin: &'a mut Spin,
}

impl Read for Spinning<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        if self.spin.spins(started) {
            // Deadlines rather than durations: comparing instants is cheaper than subtracting
            // them, and the loop is this side's reaction time.
            let end = started + SPIN_WINDOW;
            // A poll that ends after this lost its core since the last one.
            let mut lost_after = end;
            // Yield at once, then every YIELD_INTERVAL.
            let mut next_yield = started;
            loop {
                if let Some(read) = try_read(self.stream, buffer)? {
                    self.spin.served(started);
                    return Ok(read);
                }
                let now = Instant::now();
                if now >= lost_after {
                    // Another thread had the core between two polls.
                    self.spin.preempted(now);
                    break;
                }
                if now >= end {
                    self.spin.missed();
                    break;
                }
                if now >= next_yield {
                    std::thread::yield_now();
                    next_yield = now + YIELD_INTERVAL;
                } else {
                    std::hint::spin_loop();
                }
                lost_after = now + SPIN_WINDOW;
            }
        }
        let read = (&mut &*self.stream).read(buffer)?;
        self.spin.blocked(started.elapsed());
        Ok(read)
    }
}

/// Reads what `stream` holds without blocking: `None` if it holds nothing yet, `Some(0)` at end
/// of file.
fn try_read(stream: &UnixStream, buffer: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: `recv` writes at most `buffer.len()` bytes into `buffer`, which is valid and
        // exclusively borrowed for the call; the descriptor is the stream's, open while it is
        // borrowed. `MSG_DONTWAIT` makes this one call non-blocking without changing the
        // descriptor's flags, which the blocking reads share.
        let read = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if read >= 0 {
            return Ok(Some(read as usize));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(None),
            Some(libc::EINTR) => continue,
            _ => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_read_returns_what_came_then_end_of_file() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut spin = Spin::default();
        a.write_all(b"hello").unwrap();
        let mut buffer = [0; 16];
        assert_eq!(spin.reader(&b).read(&mut buffer).unwrap(), 5);
        assert_eq!(&buffer[..5], b"hello");
        drop(a);
        assert_eq!(spin.reader(&b).read(&mut buffer).unwrap(), 0);
    }

    #[test]
    fn a_read_times_out_as_the_blocking_read_does() {
        let (_a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut spin = Spin::default();
        let error = spin.reader(&b).read(&mut [0; 4]).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{error}"
        );
    }

    #[test]
    fn waits_longer_than_the_window_stop_the_spinning_and_a_short_one_resumes_it() {
        let now = Instant::now();
        let mut spin = Spin::default();
        for _ in 1..MAX_MISSES {
            spin.missed();
        }
        spin.served(now);
        assert!(spin.spins(now), "a served wait starts the count again");
        for _ in 0..MAX_MISSES {
            assert!(spin.spins(now));
            spin.missed();
        }
        assert!(!spin.spins(now), "{spin:?}");
        spin.blocked(SPIN_WINDOW * 10);
        assert!(!spin.spins(now), "a long blocked wait keeps it blocking");
        spin.blocked(SPIN_WINDOW / 2);
        assert!(spin.spins(now), "a short blocked wait resumes the spinning");
    }

    #[test]
    fn a_spin_that_lost_its_core_blocks_the_waits_for_twice_as_long_each_time() {
        let mut now = Instant::now();
        let mut spin = Spin::default();
        let mut backoff = FIRST_BACKOFF;
        while backoff < MAX_BACKOFF {
            spin.preempted(now);
            assert!(!spin.spins(now));
            assert!(!spin.spins(now + backoff - Duration::from_nanos(1)));
            now += backoff;
            assert!(spin.spins(now), "{spin:?}");
            // A spin served as soon as the waits spin again does not start the time over.
            spin.served(now);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        assert_eq!(spin.backoff, MAX_BACKOFF);
        // One served long enough after the last loss does.
        now += MAX_BACKOFF;
        spin.served(now);
        spin.preempted(now);
        assert!(spin.spins(now + FIRST_BACKOFF), "{spin:?}");
    }

    #[test]
    fn occasional_losses_block_the_waits_for_the_first_backoff_only() {
        let mut now = Instant::now();
        let mut spin = Spin::default();
        for _ in 0..10 {
            spin.preempted(now);
            assert!(!spin.spins(now));
            assert!(spin.spins(now + FIRST_BACKOFF), "{spin:?}");
            spin.served(now + 2 * FIRST_BACKOFF);
            now += Duration::from_millis(10);
        }
    }
}
