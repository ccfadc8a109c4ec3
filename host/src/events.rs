//! Events: subscriptions ([`Shared::subscribe`]), who receives what is published, and the
//! dispatch of a publish ([`Shared::publish`]).
//!
//! Events are routed through one immutable snapshot, [`Routes`], behind an [`ArcSwap`]: a publish
//! takes no lock and writes no memory shared with other threads (arc-swap records its reference
//! in a slot of its own thread), so publishes on several threads scale; a subscribe or unregister
//! builds a new snapshot under `routes_writer` and swaps it in. Registrations are rare and
//! publishes frequent, so the copy is paid where it is cheap.
//!
//! # Order and depth
//!
//! A publish calls the subscribers of its topic in subscription order, then the subscribers of
//! `*` in subscription order, on the publishing thread. A subscriber unregistered (or whose plugin
//! stopped receiving calls) before its turn is skipped, even by a dispatch already under way. The
//! outermost publish of a thread has depth 1; a publish from inside a handler one more; beyond
//! [`PH_MAX_EVENT_DEPTH`] it returns `LIMIT_EXCEEDED` and nobody receives it.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustc_hash::{FxBuildHasher, FxHashMap};

use plugin_api::abi::{
    PhBytes, PhEventCallback, PhHandle, PhResult, PhResultCode, PhStr, PH_MAX_EVENT_DEPTH,
    PH_MAX_TOPIC_LEN,
};

use crate::registry::{Entry, Registration, Shared};

/// The topic whose subscribers receive every event.
pub const ALL_TOPICS: &str = "*";

thread_local! {
    /// How many publishes are nested on this thread.
    static PUBLISH_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A topic's subscribers, in subscription order.
type Subscribers = Arc<[Arc<Registration<PhEventCallback>>]>;

/// Where events go: one immutable snapshot of every subscriber list.
#[derive(Clone, Default)]
struct Routes {
    /// The subscribers of each topic that has any. Topics are short strings chosen by plugins,
    /// not by an adversary, so FxHash (a few instructions) rather than SipHash.
    topics: FxHashMap<Box<str>, Subscribers>,
    /// Subscribers of every topic (`*`).
    all: Subscribers,
}

/// A one-hash Bloom filter of the topics that have subscribers (all bits set while anyone
/// subscribes to `*`): a publish to a topic whose bit is clear reaches nobody, and returns after
/// a hash and one load of memory that only subscribe and unregister write.
///
/// Updated after the routes it describes, with release stores read by acquire loads: a publish
/// that starts after a subscribe returned sees the new bit, then the new routes.
#[derive(Default)]
struct TopicFilter {
    words: [AtomicU64; TopicFilter::WORDS],
}

impl TopicFilter {
    const WORDS: usize = 4;

    /// The word and bit of `topic`: the top bits of its FxHash.
    #[inline]
    fn position(topic: &str) -> (usize, u64) {
        let bit = (FxBuildHasher.hash_one(topic) >> 56) as usize % (Self::WORDS * 64);
        (bit / 64, 1 << (bit % 64))
    }

    /// The bits for `routes`.
    fn bits_of(routes: &Routes) -> [u64; TopicFilter::WORDS] {
        if !routes.all.is_empty() {
            return [u64::MAX; Self::WORDS];
        }
        let mut words = [0; Self::WORDS];
        for topic in routes.topics.keys() {
            let (word, bit) = Self::position(topic);
            words[word] |= bit;
        }
        words
    }

    fn store(&self, bits: [u64; TopicFilter::WORDS]) {
        for (word, bits) in self.words.iter().zip(bits) {
            word.store(bits, Ordering::Release);
        }
    }

    /// False if nobody subscribed to `topic` (nor to `*`) before this call.
    #[inline]
    fn may_have_subscribers(&self, topic: &str) -> bool {
        let (word, bit) = Self::position(topic);
        self.words[word].load(Ordering::Acquire) & bit != 0
    }
}

/// The subscriptions of one host and the dispatch of its events.
pub(crate) struct Events {
    /// The current routes; replaced whole by subscribe and unregister.
    routes: ArcSwap<Routes>,
    /// Held while building and swapping in new routes, so that no change is lost.
    routes_writer: Mutex<()>,
    /// Which topics may have subscribers, for publishes that nobody receives.
    topic_filter: TopicFilter,
}

impl Events {
    pub(crate) fn new() -> Events {
        Events {
            routes: ArcSwap::from_pointee(Routes {
                topics: FxHashMap::default(),
                all: Arc::new([]),
            }),
            routes_writer: Mutex::new(()),
            topic_filter: TopicFilter::default(),
        }
    }

    /// Adds `registration` at the end of the subscribers of `topic` (valid, or `*`).
    pub(crate) fn add(&self, topic: &str, registration: &Arc<Registration<PhEventCallback>>) {
        self.update_subscribers(topic, |list| {
            list.iter()
                .cloned()
                .chain(std::iter::once(Arc::clone(registration)))
                .collect()
        });
    }

    /// Removes the subscription `handle` from `topic` and deactivates it; returns it, for the
    /// caller to drop outside any lock.
    pub(crate) fn remove(
        &self,
        topic: &str,
        handle: PhHandle,
    ) -> Option<Arc<Registration<PhEventCallback>>> {
        let mut removed = None;
        self.update_subscribers(topic, |list| {
            list.iter()
                .filter(|r| {
                    if r.handle == handle {
                        r.deactivate();
                        removed = Some(Arc::clone(r));
                        false
                    } else {
                        true
                    }
                })
                .cloned()
                .collect()
        });
        removed
    }

    /// Removes the subscriptions `removed` (topic, handle) and adds `added` at the end of their
    /// topics' subscribers, in one new snapshot of the routes, so that a publish sees either all
    /// of the change or none of it. The removed subscriptions are *not* deactivated: a dispatch
    /// that loaded the routes before still calls them (a reload's old version, which stays
    /// active until a grace period has passed; see `crate::reload`). Returns them, for the
    /// caller to drop outside every lock.
    pub(crate) fn replace(
        &self,
        removed: &[(String, PhHandle)],
        added: Vec<(String, Arc<Registration<PhEventCallback>>)>,
    ) -> Vec<Arc<Registration<PhEventCallback>>> {
        let _writer = self.routes_writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes = Routes::clone(&self.routes.load());
        let current = |routes: &Routes, topic: &str| -> Vec<Arc<Registration<PhEventCallback>>> {
            match topic {
                ALL_TOPICS => routes.all.to_vec(),
                topic => routes
                    .topics
                    .get(topic)
                    .map(|list| list.to_vec())
                    .unwrap_or_default(),
            }
        };
        let mut lists: FxHashMap<String, Vec<Arc<Registration<PhEventCallback>>>> =
            FxHashMap::default();
        let mut taken = Vec::new();
        for (topic, handle) in removed {
            let list = lists
                .entry(topic.clone())
                .or_insert_with(|| current(&routes, topic));
            if let Some(at) = list.iter().position(|r| r.handle == *handle) {
                taken.push(list.remove(at));
            }
        }
        for (topic, registration) in added {
            lists
                .entry(topic.clone())
                .or_insert_with(|| current(&routes, &topic))
                .push(registration);
        }
        for (topic, list) in lists {
            if topic == ALL_TOPICS {
                routes.all = list.into();
            } else if list.is_empty() {
                routes.topics.remove(topic.as_str());
            } else {
                routes.topics.insert(topic.into(), list.into());
            }
        }
        let filter = TopicFilter::bits_of(&routes);
        self.routes.store(Arc::new(routes));
        // After the routes: a publish that sees a topic's bit also sees its subscribers.
        self.topic_filter.store(filter);
        taken
    }

    /// Replaces the subscriber list of `topic` with `f(old list)`, in new routes.
    fn update_subscribers(&self, topic: &str, f: impl FnOnce(&Subscribers) -> Subscribers) {
        let _writer = self.routes_writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes = Routes::clone(&self.routes.load());
        if topic == ALL_TOPICS {
            routes.all = f(&routes.all);
        } else {
            let old = routes
                .topics
                .get(topic)
                .cloned()
                .unwrap_or_else(|| Arc::new([]));
            let new = f(&old);
            if new.is_empty() {
                routes.topics.remove(topic);
            } else {
                routes.topics.insert(topic.into(), new);
            }
        }
        let filter = TopicFilter::bits_of(&routes);
        self.routes.store(Arc::new(routes));
        // After the routes: a publish that sees a topic's bit also sees its subscribers.
        self.topic_filter.store(filter);
    }

    /// Delivers an event to every active subscriber of `topic` and of `*`, on this thread; calls
    /// `failed` for each handler that returned an error code.
    ///
    /// No lock, no allocation, no copy: the routes are read through arc-swap's guard, which
    /// keeps the snapshot (and so every registration in it) alive until the dispatch ends.
    #[inline]
    pub(crate) fn publish_valid(
        &self,
        topic: &str,
        payload: &[u8],
        failed: impl Fn(&Registration<PhEventCallback>, PhResultCode),
    ) -> Result<(), PhResult> {
        debug_assert!(plugin_api::abi::is_valid_topic(topic));
        let depth = PUBLISH_DEPTH.with(Cell::get);
        if !self.topic_filter.may_have_subscribers(topic) {
            // Nobody receives it; only the nesting limit still applies.
            return match depth >= PH_MAX_EVENT_DEPTH {
                true => Err(too_deep(topic)),
                false => Ok(()),
            };
        }
        let routes = self.routes.load();
        let subscribers = routes.topics.get(topic);
        if depth >= PH_MAX_EVENT_DEPTH {
            return Err(too_deep(topic));
        }
        if subscribers.is_none() && routes.all.is_empty() {
            return Ok(());
        }
        PUBLISH_DEPTH.with(|d| d.set(depth + 1));
        let _restore = RestoreDepth(depth);
        let ph_topic = PhStr::new(topic);
        let ph_payload = PhBytes::new(payload);
        for registration in subscribers
            .iter()
            .flat_map(|s| s.iter())
            .chain(routes.all.iter())
        {
            if !registration.is_active() {
                continue;
            }
            // SAFETY: the plugin registered this callback with this user data; the registration
            // is alive (the routes snapshot holds an `Arc` of it), so its `destroy` has not run
            // and the user data is still the plugin's to use; the callback's library is never
            // unloaded; the ABI makes event handlers `[thread-safe]`, so this thread may call it;
            // topic and payload are borrowed from our caller and outlive the call.
            let code =
                unsafe { (registration.callback.0)(registration.user_data, ph_topic, ph_payload) };
            if code != PhResult::Ok.code() {
                failed(registration, code);
            }
        }
        Ok(())
    }
}

/// Whether `topic` is a valid event topic: [`plugin_api::abi::is_valid_topic`], the ABI's rule,
/// checked with a table and no branch per byte (a publish checks its topic on every call). A
/// valid topic is ASCII, hence valid UTF-8.
#[inline]
pub(crate) fn is_valid_topic(topic: &[u8]) -> bool {
    let invalid = |b: u8| INVALID_TOPIC_BYTE[usize::from(b)];
    // Four bytes a step into two accumulators, so that the lookups run in parallel.
    let (mut a, mut b) = (0u8, 0u8);
    let mut chunks = topic.chunks_exact(4);
    for chunk in &mut chunks {
        a |= invalid(chunk[0]) | invalid(chunk[1]);
        b |= invalid(chunk[2]) | invalid(chunk[3]);
    }
    for &byte in chunks.remainder() {
        a |= invalid(byte);
    }
    a | b == 0 && !topic.is_empty() && topic.len() <= PH_MAX_TOPIC_LEN
}

/// 1 for each byte that a topic may not contain, 0 for ASCII letters, digits, `-`, `_` and `.`.
static INVALID_TOPIC_BYTE: [u8; 256] = {
    let mut table = [1u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' {
            table[b] = 0;
        }
        b += 1;
    }
    table
};

/// Logs an event that nested too deeply; returns the error for the publisher.
#[cold]
fn too_deep(topic: &str) -> PhResult {
    log::error!(
        "event `{topic}` not delivered: events nested deeper than {PH_MAX_EVENT_DEPTH} (a handler publishing what it handles?)"
    );
    PhResult::LimitExceeded
}

/// Restores the publish depth of this thread when a publish ends, even by a panic.
struct RestoreDepth(u32);

impl Drop for RestoreDepth {
    fn drop(&mut self) {
        PUBLISH_DEPTH.with(|d| d.set(self.0));
    }
}

impl Shared {
    /// Subscribes the registration to `topic`. On error the registration is refused (see
    /// [`Registration::refuse`]).
    pub(crate) fn subscribe(
        &self,
        registration: Registration<PhEventCallback>,
        topic: &str,
    ) -> Result<PhHandle, PhResult> {
        if topic != ALL_TOPICS && !plugin_api::abi::is_valid_topic(topic) {
            return Err(registration.refuse(PhResult::InvalidArgument));
        }
        let owner = Arc::clone(&registration.owner);
        let added = self.add(
            registration,
            Entry::Subscription(topic.to_owned()),
            |registration| {
                let registration = Arc::new(registration);
                if !registration.owner.is_staged() {
                    self.events.add(topic, &registration);
                    return Ok(());
                }
                // The new version of a reload: swapped in later (see `crate::reload`).
                self.staging
                    .add_subscription(topic, registration)
                    .map_err(|r| (crate::commands::unshared(r), PhResult::ShutDown))
            },
        );
        // In an isolated plugin's child: the host subscribes its proxy to the same topic.
        if let (Some(child), Ok(handle)) = (self.child.get(), &added) {
            let registered = crate::isolate::child::Registered::Subscription {
                handle: *handle,
                topic,
            };
            if let Err(code) = child.registered(registered) {
                let _ = self.unregister(&owner, *handle);
                return Err(code);
            }
        }
        added
    }

    /// Delivers an event to the one subscription `handle` (of `topic`), as a publish would: for
    /// the host of an isolated plugin, whose proxy holds one subscription per subscription of
    /// the plugin. Returns the handler's code (`UNKNOWN_HANDLE` if it ended meanwhile).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn deliver_one(
        &self,
        handle: PhHandle,
        topic: &str,
        payload: &[u8],
    ) -> PhResultCode {
        let subscribed = match self.lock_handles().get(&handle) {
            Some((_, Entry::Subscription(topic))) => topic.clone(),
            _ => return PhResult::UnknownHandle.code(),
        };
        let routes = self.events.routes.load();
        let list = match subscribed.as_str() {
            ALL_TOPICS => Some(&routes.all),
            topic => routes.topics.get(topic),
        };
        let Some(registration) = list
            .and_then(|l| l.iter().find(|r| r.handle == handle))
            .filter(|r| r.is_active())
            .cloned()
        else {
            return PhResult::UnknownHandle.code();
        };
        drop(routes);
        let _inside = crate::quiesce::enter();
        // SAFETY: the plugin registered this callback with this user data, alive while we hold
        // the registration; topic and payload outlive the call.
        let code = unsafe {
            (registration.callback.0)(
                registration.user_data,
                PhStr::new(topic),
                PhBytes::new(payload),
            )
        };
        if code != PhResult::Ok.code() {
            self.handler_failed(&registration, topic, code);
        }
        code
    }

    /// The topics of all subscriptions with the plugin of each, sorted.
    pub(crate) fn subscription_topics(&self) -> Vec<(String, String)> {
        let mut topics: Vec<(String, String)> = self
            .lock_handles()
            .values()
            .filter(|(owner, _)| !owner.is_staged())
            .filter_map(|(owner, entry)| match entry {
                Entry::Subscription(topic) => Some((topic.clone(), owner.name.clone())),
                _ => None,
            })
            .collect();
        topics.sort();
        topics
    }

    /// Delivers an event to every subscriber of `topic` and of `*`, on this thread.
    ///
    /// Returns [`PhResult::InvalidArgument`] for an invalid topic.
    pub(crate) fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), PhResult> {
        if !crate::events::is_valid_topic(topic.as_bytes()) {
            return Err(PhResult::InvalidArgument);
        }
        self.publish_valid(topic, payload)
    }

    /// [`Shared::publish`] of a topic already checked with [`crate::events::is_valid_topic`].
    #[inline]
    pub(crate) fn publish_valid(&self, topic: &str, payload: &[u8]) -> Result<(), PhResult> {
        self.events
            .publish_valid(topic, payload, |registration, code| {
                self.handler_failed(registration, topic, code)
            })
    }

    /// Reports a handler that did not return `Ok`; faults its plugin if it panicked.
    #[cold]
    fn handler_failed(
        &self,
        registration: &Registration<PhEventCallback>,
        topic: &str,
        code: PhResultCode,
    ) {
        if registration.owner.is_application {
            // The application is never faulted: its handler's failure is its own to handle.
            log::warn!(
                "a handler of the application for event `{topic}` failed: {}",
                PhResult::from_code(code)
            );
            return;
        }
        match PhResult::from_code(code) {
            PhResult::Ok => {}
            PhResult::Panicked => self.fault(
                &registration.owner,
                &format!("its handler of event `{topic}` panicked"),
            ),
            code => log::warn!(
                "plugin `{}`: handler of event `{topic}` failed: {code}",
                registration.owner.name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_topic;

    #[test]
    fn topic_check_is_the_abi_rule() {
        for b in 0..=u8::MAX {
            let one = [b];
            let text = [b'a', b, b'z'];
            for bytes in [&one[..], &text[..]] {
                let abi = std::str::from_utf8(bytes).is_ok_and(plugin_api::abi::is_valid_topic);
                assert_eq!(is_valid_topic(bytes), abi, "{bytes:?}");
            }
        }
        // Every length, with one bad byte at every place.
        for len in 1..=40 {
            let good = vec![b'a'; len];
            assert!(is_valid_topic(&good), "{len}");
            for at in 0..len {
                let mut bad = good.clone();
                bad[at] = b' ';
                assert!(!is_valid_topic(&bad), "{len} {at}");
            }
        }
        let longest = "t".repeat(plugin_api::abi::PH_MAX_TOPIC_LEN);
        assert!(is_valid_topic(longest.as_bytes()));
        assert!(!is_valid_topic(format!("{longest}t").as_bytes()));
        assert!(!is_valid_topic(b""));
        assert!(is_valid_topic(b"wordfreq.totals"));
        assert!(!is_valid_topic(b"*"));
    }
}
