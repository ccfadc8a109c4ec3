//! The store: a redb database file, opened for each operation.
//!
//! redb locks its file for as long as a `Database` is open (an exclusive `flock`), and a second
//! opener, in this process or another, gets `DatabaseAlreadyOpen` at once. So that two `plughost`
//! processes can use one file, the store holds the file only for the length of one operation:
//! open, one transaction, close. Within one process a mutex queues the operations. A process
//! that finds the file held retries with short, jittered pauses until the busy timeout.
//!
//! Retrying alone is not fair: a process that writes in a loop closes and reopens the file within
//! microseconds, and the other would almost never find it free. So a waiting process says so: it
//! holds a shared lock on a second file, `FILE.waiters` (empty, next to the database), while it
//! waits; and a process that closes the database after an operation pauses, for up to
//! [`HANDOFF`], while anyone holds that lock, so that the waiter's next try finds the database
//! free. Two processes writing at once thus take turns, operation by operation.
//!
//! A commit is durable when `put` or `delete` returns (redb's default durability: the file is
//! synced; every commit is a two-phase commit, see [`Store::open`]).
//!
//! Nothing foreign runs while the file is held: a scan reads a batch of entries, closes the
//! file, then calls the caller's callback for each (so the callback may call the store).

use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use plugin_api::abi::PhResult;
use plugin_api::Error;
use redb::{Database, DatabaseError, TableDefinition};

/// The one table: UTF-8 keys, byte values.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// redb's page cache per open: the store holds the file for one operation at a time, so a
/// small cache is enough (redb's default is 1 GiB, allocated as it fills).
const CACHE_BYTES: usize = 4 << 20;

/// A scan reads at most this many entries per opening of the file.
const SCAN_BATCH: usize = 256;

/// The first pause after finding the file held, and the longest: shorter than [`HANDOFF`], so
/// that a waiter tries again while the holder pauses for it.
const FIRST_PAUSE: Duration = Duration::from_micros(100);
const LONGEST_PAUSE: Duration = Duration::from_millis(2);

/// How long a process that closes the database pauses, at most, while another waits for it.
const HANDOFF: Duration = Duration::from_millis(20);

/// How often it looks whether the waiter has taken its turn.
const HANDOFF_POLL: Duration = Duration::from_micros(250);

/// A key-value store in a redb database file.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    busy_timeout: Duration,
    /// Queues this process's operations on the file (a second open would fail, not wait).
    turn: Mutex<Turn>,
}

/// What a process's operations on the file share.
#[derive(Debug)]
struct Turn {
    /// `FILE.waiters`: a process that waits for the database holds a shared lock on it.
    waiters: fd_lock::RwLock<File>,
}

/// The file, open for one operation; closing it hands it over to a waiting process.
struct Open<'s> {
    db: Option<Database>,
    turn: MutexGuard<'s, Turn>,
}

impl Open<'_> {
    fn db(&self) -> &Database {
        self.db.as_ref().expect("open until dropped")
    }

    fn db_mut(&mut self) -> &mut Database {
        self.db.as_mut().expect("open until dropped")
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        // Closing the database releases redb's lock on it.
        drop(self.db.take());
        let started = Instant::now();
        while started.elapsed() < HANDOFF {
            match self.turn.waiters.try_write() {
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(HANDOFF_POLL),
                // Nobody waits (or the lock file fails: then it cannot tell).
                _ => break,
            }
        }
    }
}

/// `text` on one line: control characters (newlines included) as spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Store {
    /// Opens (creating it if needed, with its folder) the database file at `path`, checks the
    /// integrity of the whole file, and creates the table. `busy_timeout` bounds how long any
    /// operation waits for another process to release the file.
    ///
    /// # Errors
    ///
    /// One line naming the file: it cannot be created or opened, it is not a redb database, it
    /// is corrupt, or another process held it for longer than `busy_timeout`.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store, Error> {
        let path = std::path::absolute(path).map_err(|e| {
            Error::new(one_line(&format!(
                "the database path {} cannot be resolved: {e}",
                path.display()
            )))
        })?;
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| {
                Error::new(one_line(&format!(
                    "the database {}: cannot create its folder: {e}",
                    path.display()
                )))
            })?;
        }
        let mut waiters_path = OsString::from(path.as_os_str());
        waiters_path.push(".waiters");
        let waiters = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&waiters_path)
            .map_err(|e| {
                Error::new(one_line(&format!(
                    "the database {}: cannot open {}: {e}",
                    path.display(),
                    Path::new(&waiters_path).display()
                )))
            })?;
        let store = Store {
            path,
            busy_timeout,
            turn: Mutex::new(Turn {
                waiters: fd_lock::RwLock::new(waiters),
            }),
        };
        // redb asserts on some damage (a region header it cannot read) instead of returning an
        // error: its panic is caught here so that `init` fails with a line naming the file, like
        // for any other damage. Nothing is written to the file while unwinding (redb's close
        // does not write during a panic), and the file is closed, its lock released.
        match std::panic::catch_unwind(AssertUnwindSafe(|| store.check())) {
            Ok(result) => result?,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(no message)");
                return Err(Error::new(one_line(&format!(
                    "the database {} is corrupt: redb failed reading it ({message})",
                    store.path.display()
                ))));
            }
        }
        Ok(store)
    }

    /// Checks the integrity of the whole file and creates the table.
    fn check(&self) -> Result<(), Error> {
        let mut open = self.open_file()?;
        let clean = open
            .db_mut()
            .check_integrity()
            .map_err(|e| self.error("failed its integrity check", e))?;
        if !clean {
            // Every commit of this store is a two-phase commit, so redb refuses (the error above)
            // a file whose committed trees are damaged, rather than going back to an older
            // commit; what it repaired here is its allocation state, which it rebuilds from the
            // trees without losing an entry.
            log::warn!(
                "the database {} had damaged allocation state, which redb rebuilt; no entry was lost",
                self.path.display()
            );
        }
        let mut txn = open
            .db()
            .begin_write()
            .map_err(|e| self.error("cannot be written", e))?;
        txn.set_two_phase_commit(true);
        txn.open_table(TABLE)
            .map_err(|e| self.error("cannot be written", e))?;
        txn.commit()
            .map_err(|e| self.error("cannot be written", e))?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error naming the file: `the database FILE WHAT: ERROR`, on one line.
    fn error(&self, what: &str, error: impl Into<redb::Error>) -> Error {
        let error: redb::Error = error.into();
        let code = match error {
            redb::Error::ValueTooLarge(_) => PhResult::LimitExceeded,
            _ => PhResult::Error,
        };
        Error::with_code(
            code,
            one_line(&format!(
                "the database {} {what}: {error}",
                self.path.display()
            )),
        )
    }

    /// Opens the file, waiting (with growing pauses) while another process holds it, and
    /// saying so through `FILE.waiters`.
    fn open_file(&self) -> Result<Open<'_>, Error> {
        let turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        let mut jitter = Jitter::new();
        let mut waiting = None;
        let db = loop {
            match Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(&self.path)
            {
                Ok(db) => break db,
                Err(DatabaseError::DatabaseAlreadyOpen) => {
                    let waited = started.elapsed();
                    if waited >= self.busy_timeout {
                        return Err(Error::new(format!(
                            "the database {} is busy: another process held it for over {} ms",
                            self.path.display(),
                            self.busy_timeout.as_millis()
                        )));
                    }
                    if waiting.is_none() {
                        // Refused only for a moment, while a holder looks: the next round.
                        waiting = turn.waiters.try_read().ok();
                    }
                    std::thread::sleep(jitter.spread(pause).min(self.busy_timeout - waited));
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(e) => return Err(self.error("cannot be opened", e)),
            }
        };
        drop(waiting);
        Ok(Open { db: Some(db), turn })
    }

    /// Runs `f` on the open file; its error becomes one naming the file and `what` failed.
    fn with_db<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Database) -> Result<T, Failure>,
    ) -> Result<T, Error> {
        let open = self.open_file()?;
        f(open.db()).map_err(|Failure(e)| self.error(what, *e))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.with_db("cannot be read", |db| {
            let txn = db.begin_read()?;
            let value = txn.open_table(TABLE)?.get(key)?.map(|v| v.value().to_vec());
            Ok(value)
        })
    }

    /// Sets `key` to `value`; durable when it returns.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.with_db("cannot be written", |db| {
            let mut txn = db.begin_write()?;
            txn.set_two_phase_commit(true);
            txn.open_table(TABLE)?.insert(key, value)?;
            txn.commit()?;
            Ok(())
        })
    }

    /// Removes `key`; whether it was set. Durable when it returns.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        self.with_db("cannot be written", |db| {
            let mut txn = db.begin_write()?;
            txn.set_two_phase_commit(true);
            let removed = txn.open_table(TABLE)?.remove(key)?.is_some();
            txn.commit()?;
            Ok(removed)
        })
    }

    /// Calls `f` with the entries whose key starts with `prefix`, in key order, until it
    /// returns `false`. The file is closed while `f` runs (entries are read in batches).
    pub fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error> {
        let mut after: Option<String> = None;
        loop {
            let batch = self.batch(prefix, after.as_deref())?;
            let done = batch.len() < SCAN_BATCH;
            for (key, value) in &batch {
                if !f(key, value) {
                    return Ok(());
                }
            }
            match batch.into_iter().next_back() {
                Some((key, _)) if !done => after = Some(key),
                _ => return Ok(()),
            }
        }
    }

    /// Up to [`SCAN_BATCH`] entries whose key starts with `prefix`, from the first key after
    /// `after` (or from `prefix`).
    fn batch(&self, prefix: &str, after: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.with_db("cannot be read", |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(TABLE)?;
            let start = match after {
                Some(key) => Bound::Excluded(key),
                None => Bound::Included(prefix),
            };
            let mut batch = Vec::new();
            for entry in table.range::<&str>((start, Bound::Unbounded))? {
                let (key, value) = entry?;
                let key = key.value();
                if !key.starts_with(prefix) || batch.len() == SCAN_BATCH {
                    break;
                }
                batch.push((key.to_owned(), value.value().to_vec()));
            }
            Ok(batch)
        })
    }
}

/// A redb error of any kind, boxed (redb's are large) on its way to [`Store::error`].
struct Failure(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure(Box::new(error.into()))
    }
}

/// Spreads pauses so that processes waiting for the same file do not retry in step: a small
/// xorshift generator seeded from the clock and the process id (no need for a real one).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Jitter((u64::from(nanos) ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    /// A duration between half of `pause` and all of it.
    fn spread(&mut self, pause: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let half = pause / 2;
        half + half.mul_f64((self.0 % 1024) as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        Store::open(&dir.join("kv.redb"), Duration::from_secs(5)).unwrap()
    }

    /// Puts `entries` in one transaction (one opening of the file instead of one per entry).
    fn fill(store: &Store, entries: impl IntoIterator<Item = (String, Vec<u8>)>) {
        let open = store.open_file().unwrap();
        let mut txn = open.db().begin_write().unwrap();
        txn.set_two_phase_commit(true);
        {
            let mut table = txn.open_table(TABLE).unwrap();
            for (key, value) in entries {
                table.insert(key.as_str(), value.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    fn scan_all(store: &Store, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut seen = Vec::new();
        store
            .scan(prefix, &mut |k, v| {
                seen.push((k.to_owned(), v.to_vec()));
                true
            })
            .unwrap();
        seen
    }

    #[test]
    fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        assert_eq!(store.get("a").unwrap(), None);
        store.put("a", b"1").unwrap();
        store.put("", b"").unwrap();
        assert_eq!(store.get("a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.get("").unwrap().as_deref(), Some(&b""[..]));
        store.put("a", b"2").unwrap();
        assert_eq!(store.get("a").unwrap().as_deref(), Some(&b"2"[..]));
        assert!(store.delete("a").unwrap());
        assert!(!store.delete("a").unwrap());
        assert_eq!(store.get("a").unwrap(), None);
    }

    #[test]
    fn the_folder_is_created_and_entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/folder/kv.redb");
        let store = Store::open(&path, Duration::from_secs(5)).unwrap();
        store.put("k", b"v").unwrap();
        drop(store);
        let store = Store::open(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn scans_by_prefix_across_batches_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let n = SCAN_BATCH * 2 + 3;
        fill(
            &store,
            (0..n).map(|i| (format!("p/{i:04}"), i.to_string().into_bytes())),
        );
        store.put("p", b"not under p/").unwrap();
        store.put("q/0", b"other").unwrap();
        let all = scan_all(&store, "p/");
        assert_eq!(all.len(), n);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            all[n - 1],
            (format!("p/{:04}", n - 1), (n - 1).to_string().into_bytes())
        );
        assert_eq!(scan_all(&store, "").len(), n + 2);
        assert_eq!(scan_all(&store, "x"), []);

        let mut seen = 0;
        store
            .scan("p/", &mut |_, _| {
                seen += 1;
                seen < SCAN_BATCH + 1
            })
            .unwrap();
        assert_eq!(seen, SCAN_BATCH + 1);
    }

    #[test]
    fn the_callback_may_write_to_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        for i in 0..10 {
            store.put(&format!("a/{i}"), b"x").unwrap();
        }
        let mut deleted = 0;
        store
            .scan("a/", &mut |k, _| {
                deleted += usize::from(store.delete(k).unwrap());
                store.put(&format!("b/{k}"), b"moved").unwrap();
                true
            })
            .unwrap();
        assert_eq!(deleted, 10);
        assert_eq!(scan_all(&store, "a/"), []);
        assert_eq!(scan_all(&store, "b/").len(), 10);
    }

    #[test]
    fn threads_share_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..10 {
                        store.put(&format!("{t}/{i}"), b"v").unwrap();
                    }
                });
            }
        });
        assert_eq!(scan_all(&store, "").len(), 40);
    }

    #[test]
    fn two_stores_on_one_file_take_turns() {
        // Two stores of the same file hold it as two processes would (each its own descriptor
        // and lock); neither starves the other, with a busy timeout far below what starving
        // would take.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let a = Store::open(&path, Duration::from_secs(5)).unwrap();
        let b = Store::open(&path, Duration::from_secs(5)).unwrap();
        std::thread::scope(|s| {
            for (name, store) in [("a", &a), ("b", &b)] {
                s.spawn(move || {
                    for i in 0..60 {
                        store
                            .put(&format!("{name}/{i:02}"), name.as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(scan_all(&a, "a/").len(), 60);
        assert_eq!(scan_all(&b, "b/").len(), 60);
    }

    #[test]
    fn a_file_held_too_long_is_busy_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let store = Store::open(&path, Duration::from_millis(50)).unwrap();
        // Another holder of the file (as another process would be).
        let held = Database::create(&path).unwrap();
        let error = store.put("k", b"v").unwrap_err();
        assert!(error.message().contains("is busy"), "{}", error.message());
        assert!(
            error.message().contains(&path.display().to_string()),
            "{}",
            error.message()
        );
        drop(held);
        store.put("k", b"v").unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_in_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        std::fs::write(&path, b"not a database\nat all\n").unwrap();
        let error = Store::open(&path, Duration::from_secs(1)).unwrap_err();
        let message = error.message();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(!message.contains('\n'), "{message}");
        // Left as it was.
        assert_eq!(std::fs::read(&path).unwrap(), b"not a database\nat all\n");
    }

    #[test]
    fn a_folder_in_place_of_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = Store::open(dir.path(), Duration::from_secs(1)).unwrap_err();
        assert!(
            error.message().contains("cannot be opened"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn a_damaged_entry_page_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let store = Store::open(&path, Duration::from_secs(1)).unwrap();
        fill(
            &store,
            (0..500).map(|i| (format!("k{i:03}"), format!("MARKER-{i:03}").into_bytes())),
        );
        store.put("last", b"x").unwrap();
        drop(store);
        // Damage the page that holds the entries' values (a leaf of the committed tree).
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(10)
            .position(|w| w == b"MARKER-250")
            .expect("the value is in the file");
        for b in &mut bytes[at..at + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();
        let error = Store::open(&path, Duration::from_secs(1)).unwrap_err();
        let message = error.message();
        assert!(message.contains("failed its integrity check"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(!message.contains('\n'), "{message}");
        // redb rewrites its header and allocation state when it closes the file, but not the
        // damaged page: the next start refuses the file again, rather than use it.
        let after = std::fs::read(&path).unwrap();
        assert!(
            after[at..at + 64] == bytes[at..at + 64],
            "the damaged page changed"
        );
        let again = Store::open(&path, Duration::from_secs(1)).unwrap_err();
        assert!(
            again.message().contains("failed its integrity check"),
            "{}",
            again.message()
        );
    }
}
