//! Events: subscriptions ([`Shared::subscribe`]), who receives what is published, and the
//! dispatch of a publish ([`Shared::publish`]).
//!
//! Events are routed through one immutable snapshot, [`Routes`], behind an [`ArcSwap`]: a publish
//! takes no lock and writes no memory shared with other threads (arc-swap records its reference
//! in a slot of its own thread), so publishes on several threads scale; a subscribe or unregister
//! builds a new snapshot under `routes_writer` and swaps it in. Registrations are rare and
//! publishes frequent, so the copy is paid where it is cheap.
//!
//! A publish checks and hashes its topic in one pass ([`Topic::check`]); the hash serves the
//! [`TopicFilter`], a Bloom filter of the subscribed topics with a bit of its own for `*`, and
//! the lookup in the routes' [`TopicIndex`]. A publish to a topic that nobody subscribes to returns
//! after that pass and one load of the filter; while someone subscribes to `*`, it loads the
//! routes for the subscribers of `*` but does not search the topics.
//!
//! # Order and depth
//!
//! A publish calls the subscribers of its topic in subscription order, then the subscribers of
//! `*` in subscription order, on the publishing thread. A subscriber unregistered (or whose plugin
//! stopped receiving calls) before its turn is skipped, even by a dispatch already under way. The
//! outermost publish of a thread has depth 1; a publish from inside a handler one more; beyond
//! [`PH_MAX_EVENT_DEPTH`] it returns `LIMIT_EXCEEDED` and nobody receives it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

use plugin_api::abi::{
    PhBytes, PhEventCallback, PhHandle, PhResult, PhResultCode, PhStr, PH_MAX_EVENT_DEPTH,
};

use crate::registry::{Entry, Registration, Shared};
use crate::topic::{Topic, TopicIndex};

/// The topic whose subscribers receive every event.
pub const ALL_TOPICS: &str = "*";

thread_local! {
    /// How many publishes are nested on this thread.
    static PUBLISH_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A topic's subscribers, in subscription order.
type Subscribers = Arc<[Arc<Registration<PhEventCallback>>]>;

/// Where events go: one immutable snapshot of every subscriber list.
struct Routes {
    /// The subscribers of each topic that has any, as subscribe and unregister change them.
    topics: FxHashMap<Box<str>, Subscribers>,
    /// The same lists, found by a [`Topic`]'s hash: what a publish searches.
    index: TopicIndex<Subscribers>,
    /// Subscribers of every topic (`*`).
    all: Subscribers,
}

impl Routes {
    /// The routes of `topics` and `all`, with their index.
    fn new(topics: FxHashMap<Box<str>, Subscribers>, all: Subscribers) -> Routes {
        Routes {
            index: TopicIndex::new(&topics),
            topics,
            all,
        }
    }
}

/// What a publish may reach, by the [`TopicFilter`]: the filter's word for its topic and the
/// topic's bit in it.
#[derive(Clone, Copy)]
struct Reach {
    word: u64,
    bit: u64,
}

impl Reach {
    /// Whether a subscriber of the topic or of `*` may exist.
    #[inline]
    fn anyone(self) -> bool {
        self.word & (self.bit | TopicFilter::ALL) != 0
    }

    /// Whether a subscriber of the topic may exist.
    #[inline]
    fn topic(self) -> bool {
        self.word & self.bit != 0
    }
}

/// A one-hash Bloom filter of the topics that have subscribers, and whether anyone subscribes to
/// `*`: a publish learns from one load whether it may reach a subscriber of its topic, one of
/// `*`, both or nobody. Nobody: it returns at once, without touching the routes. Only `*`: it
/// delivers to `*` without searching the topics. A subscriber of `*` does not set the topics'
/// bits, so the filter keeps working for everyone else.
///
/// Bit 0 of each word stands for `*` (and for the topics whose position is bit 0 of a word,
/// which are then searched whenever someone subscribes to `*`). Updated after the routes it
/// describes, with release stores read by acquire loads: a publish that starts after a subscribe
/// returned sees the new bit, then the new routes.
#[derive(Default)]
struct TopicFilter {
    words: [AtomicU64; TopicFilter::WORDS],
}

impl TopicFilter {
    const WORDS: usize = 4;
    /// The bit of each word that is set while someone subscribes to `*`.
    const ALL: u64 = 1;

    /// The word and bit of a topic of hash `hash`: its top 8 bits.
    #[inline]
    fn position(hash: u64) -> (usize, u64) {
        let at = (hash >> 56) as usize;
        (at / 64 % Self::WORDS, 1 << (at % 64))
    }

    /// The bits for `routes`.
    fn bits_of(routes: &Routes) -> [u64; TopicFilter::WORDS] {
        let all = u64::from(!routes.all.is_empty());
        let mut words = [all; Self::WORDS];
        for hash in routes.index.hashes() {
            let (word, bit) = Self::position(hash);
            words[word] |= bit;
        }
        words
    }

    fn store(&self, bits: [u64; TopicFilter::WORDS]) {
        for (word, bits) in self.words.iter().zip(bits) {
            word.store(bits, Ordering::Release);
        }
    }

    /// Whom a publish to a topic of hash `hash` may reach: nobody (see [`Reach::anyone`]) if
    /// nobody subscribed to the topic nor to `*` before this call.
    #[inline]
    fn reach(&self, hash: u64) -> Reach {
        let (word, bit) = Self::position(hash);
        Reach {
            word: self.words[word].load(Ordering::Acquire),
            bit,
        }
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
            routes: ArcSwap::from_pointee(Routes::new(FxHashMap::default(), Arc::new([]))),
            routes_writer: Mutex::new(()),
            topic_filter: TopicFilter::default(),
        }
    }

    /// Swaps in the routes of `topics` and `all`, then the filter that describes them. Called
    /// with `routes_writer` held.
    fn install(&self, topics: FxHashMap<Box<str>, Subscribers>, all: Subscribers) {
        let routes = Routes::new(topics, all);
        let filter = TopicFilter::bits_of(&routes);
        self.routes.store(Arc::new(routes));
        // After the routes: a publish that sees a topic's bit also sees its subscribers.
        self.topic_filter.store(filter);
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
        let routes = self.routes.load_full();
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
        let (mut topics, mut all) = (routes.topics.clone(), Arc::clone(&routes.all));
        for (topic, list) in lists {
            if topic == ALL_TOPICS {
                all = list.into();
            } else if list.is_empty() {
                topics.remove(topic.as_str());
            } else {
                topics.insert(topic.into(), list.into());
            }
        }
        self.install(topics, all);
        taken
    }

    /// Replaces the subscriber list of `topic` with `f(old list)`, in new routes.
    fn update_subscribers(&self, topic: &str, f: impl FnOnce(&Subscribers) -> Subscribers) {
        let _writer = self.routes_writer.lock().unwrap_or_else(|e| e.into_inner());
        let routes = self.routes.load_full();
        let (mut topics, mut all) = (routes.topics.clone(), Arc::clone(&routes.all));
        if topic == ALL_TOPICS {
            all = f(&all);
        } else {
            let old = topics.get(topic).cloned().unwrap_or_else(|| Arc::new([]));
            let new = f(&old);
            if new.is_empty() {
                topics.remove(topic);
            } else {
                topics.insert(topic.into(), new);
            }
        }
        self.install(topics, all);
    }

    /// Delivers an event to every active subscriber of `topic` and of `*`, on this thread; calls
    /// `failed` for each handler that returned an error code.
    ///
    /// No lock, no allocation, no copy: the routes are read through arc-swap's guard, which
    /// keeps the snapshot (and so every registration in it) alive until the dispatch ends. A
    /// topic that nobody subscribes to (nor `*`) costs one load of the [`TopicFilter`].
    #[inline]
    pub(crate) fn publish_valid(
        &self,
        topic: Topic<'_>,
        payload: &[u8],
        failed: impl Fn(&Registration<PhEventCallback>, &str, PhResultCode),
    ) -> Result<(), PhResult> {
        let reach = self.topic_filter.reach(topic.hash());
        if !reach.anyone() {
            // Nobody receives it; only the nesting limit still applies.
            return match PUBLISH_DEPTH.with(Cell::get) >= PH_MAX_EVENT_DEPTH {
                true => Err(too_deep(topic.as_str())),
                false => Ok(()),
            };
        }
        self.dispatch(topic.as_str(), topic.hash(), reach.topic(), payload, failed)
    }

    /// [`Events::publish_valid`] past the filter: delivers to the subscribers of `topic` (of hash
    /// `hash`; searched only if `search_topics`, when the filter says there may be some) and of
    /// `*`. Out of line, with the topic in registers: the publishes that return at the filter
    /// keep a small frame, and the loop keeps one place for every caller.
    #[inline(never)]
    fn dispatch(
        &self,
        topic: &str,
        hash: u64,
        search_topics: bool,
        payload: &[u8],
        failed: impl Fn(&Registration<PhEventCallback>, &str, PhResultCode),
    ) -> Result<(), PhResult> {
        let depth = PUBLISH_DEPTH.with(Cell::get);
        let routes = self.routes.load();
        let subscribers = match search_topics {
            true => routes.index.find(topic, hash),
            false => None,
        };
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
        let deliver = |registration: &Registration<PhEventCallback>| {
            if !registration.is_active() {
                return;
            }
            // SAFETY: the plugin registered this callback with this user data; the registration
            // is alive (the routes snapshot holds an `Arc` of it), so its `destroy` has not run
            // and the user data is still the plugin's to use; the callback's library is never
            // unloaded; the ABI makes event handlers `[thread-safe]`, so this thread may call it;
            // topic and payload are borrowed from our caller and outlive the call.
            let code =
                unsafe { (registration.callback.0)(registration.user_data, ph_topic, ph_payload) };
            if code != PhResult::Ok.code() {
                failed(registration, topic, code);
            }
        };
        // Two plain loops rather than one over a chain of both lists: the topic's subscribers,
        // then those of `*`.
        for registration in subscribers.map_or(&[][..], |list| &list[..]) {
            deliver(registration);
        }
        for registration in routes.all.iter() {
            deliver(registration);
        }
        Ok(())
    }
}

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
        let topic = Topic::check(topic.as_bytes()).ok_or(PhResult::InvalidArgument)?;
        self.publish_valid(topic, payload)
    }

    /// [`Shared::publish`] of a topic already checked (and hashed) by [`Topic::check`].
    #[inline]
    pub(crate) fn publish_valid(&self, topic: Topic<'_>, payload: &[u8]) -> Result<(), PhResult> {
        self.events
            .publish_valid(topic, payload, |registration, topic, code| {
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
    use super::{Reach, TopicFilter};
    use crate::topic::{hash, Topic};
    use crate::PluginHost;

    /// What the filter of `host` says about `topic`.
    fn reach(host: &PluginHost, topic: &str) -> Reach {
        let topic = Topic::check(topic.as_bytes()).unwrap();
        host.shared.events.topic_filter.reach(topic.hash())
    }

    #[test]
    fn a_subscriber_of_all_topics_leaves_the_topic_filter_working() {
        let host = PluginHost::new();
        // Topics whose bit is not the one that `*` shares (bit 0 of a word).
        let topics: Vec<String> = (0..)
            .map(|i| format!("filter.{i}"))
            .filter(|t| TopicFilter::position(hash(t)).1 != TopicFilter::ALL)
            .take(50)
            .collect();
        assert!(topics.iter().all(|t| !reach(&host, t).anyone()));

        let all = host.subscribe("*", |_, _| {}).unwrap();
        for topic in &topics {
            let reach = reach(&host, topic);
            assert!(reach.anyone(), "{topic}: `*` receives it");
            assert!(!reach.topic(), "{topic}: nobody subscribes to it");
        }
        let first = host.subscribe(&topics[0], |_, _| {}).unwrap();
        assert!(reach(&host, &topics[0]).topic());

        host.unregister(all).unwrap();
        assert!(reach(&host, &topics[0]).topic());
        let position = |t: &str| TopicFilter::position(hash(t));
        for topic in &topics[1..] {
            if position(topic) != position(&topics[0]) {
                assert!(!reach(&host, topic).anyone(), "{topic}");
            }
        }
        host.unregister(first).unwrap();
        assert!(topics.iter().all(|t| !reach(&host, t).anyone()));
    }
}
