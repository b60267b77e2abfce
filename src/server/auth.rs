//! HTTP basic authentication against the bcrypt hashes of a web config
//! file's `basic_auth_users`.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10), so a
//! credential that passed is remembered: by a keyed MAC of (user, hash,
//! password) under a key drawn at start, never the password itself. A
//! scrape with known-good credentials then costs one HMAC. Wrong
//! credentials always pay bcrypt — also for unknown users, so timing does
//! not tell which user names exist — and at most `BCRYPT_PARALLEL` of them
//! run at once, so a flood of bad passwords cannot take every core. At most
//! `BCRYPT_QUEUE` more wait for their turn; past that a request is refused
//! with 503 at once instead of holding its connection for seconds.

use base64::Engine as _;
use hyper::header::HeaderValue;
use ring::hmac;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// How many remembered credentials; a full cache starts over.
const CACHE_ENTRIES: usize = 64;
/// bcrypt checks running at the same time.
const BCRYPT_PARALLEL: usize = 2;
/// bcrypt checks waiting for their turn; past that: `Verdict::Busy`.
const BCRYPT_QUEUE: usize = 16;
/// Checked against when the user is unknown, so the answer takes as long as
/// for a known user (bcrypt of a throwaway string, cost 10).
const DUMMY_HASH: &str = "$2b$10$riG56.b3eXdtHZADctZz2egh9IFGBvPMtnmwkdXV/BMhhlj4NycMK";

pub struct BasicAuth {
    /// user → bcrypt hash.
    users: BTreeMap<String, String>,
    key: hmac::Key,
    cache: Mutex<Vec<[u8; 32]>>,
    bcrypt: Arc<Semaphore>,
    queued: AtomicUsize,
}

/// What `BasicAuth::check` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Not checked: too many bcrypt checks already running or waiting.
    Busy,
}

/// Counts a check as queued while it lives.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the hashes.
        write!(f, "BasicAuth({} users)", self.users.len())
    }
}

impl BasicAuth {
    /// `users`: user → bcrypt hash, each already checked by `check_hash`.
    pub fn new(users: BTreeMap<String, String>) -> Result<Self, String> {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| "no random numbers for the credential cache key".to_owned())?;
        Ok(BasicAuth {
            users,
            key,
            cache: Mutex::new(Vec::with_capacity(CACHE_ENTRIES)),
            bcrypt: Arc::new(Semaphore::new(BCRYPT_PARALLEL)),
            queued: AtomicUsize::new(0),
        })
    }

    /// Whether the `Authorization` header carries a user's right password.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> Verdict {
        let Some((user, password)) = authorization.and_then(decode) else {
            return Verdict::Denied;
        };
        let known = self.users.get(&user);
        let hash = known.map_or(DUMMY_HASH, String::as_str).to_owned();
        let tag = self.tag(&user, &hash, &password);
        if known.is_some() && self.remembered(&tag) {
            return Verdict::Allowed;
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= BCRYPT_PARALLEL + BCRYPT_QUEUE {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Verdict::Busy;
        }
        let _queued = Queued(&self.queued);
        let Ok(permit) = self.bcrypt.clone().acquire_owned().await else {
            return Verdict::Denied;
        };
        // The same credentials may have passed while this one waited.
        if known.is_some() && self.remembered(&tag) {
            return Verdict::Allowed;
        }
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if ok && known.is_some() {
            self.remember(tag);
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    #[cfg(test)]
    async fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        self.check(authorization).await == Verdict::Allowed
    }

    fn tag(&self, user: &str, hash: &str, password: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [user, hash, password] {
            // Length-prefixed so ("ab","c") and ("a","bc") differ.
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Compares against every entry, in constant time each.
    fn remembered(&self, tag: &[u8; 32]) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .iter()
            .fold(subtle::Choice::from(0), |found, t| found | t.ct_eq(tag))
            .into()
    }

    fn remember(&self, tag: [u8; 32]) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.push(tag);
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.lock().unwrap().len()
    }
}

/// Refuses anything but a bcrypt hash (`$2a$`, `$2b$`, `$2x$`, `$2y$`).
pub fn check_hash(hash: &str) -> Result<(), String> {
    hash.parse::<bcrypt::HashParts>()
        .map(|_| ())
        .map_err(|_| "not a bcrypt hash (expected $2y$10$ followed by 53 characters; make one with `htpasswd -nBC 10 USER`)".to_owned())
}

/// `Basic base64(user:password)` → (user, password).
fn decode(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn auth(user: &str, password: &str) -> BasicAuth {
        // Cost 4, the minimum, to keep the test fast.
        let hash = bcrypt::hash(password, 4).unwrap();
        check_hash(&hash).unwrap();
        BasicAuth::new(BTreeMap::from([(user.to_owned(), hash)])).unwrap()
    }

    #[tokio::test]
    async fn right_password_passes_and_is_remembered() {
        let a = auth("prometheus", "s3cret:with:colons");
        assert_eq!(a.cached(), 0);
        assert!(
            a.allows(Some(&header("prometheus", "s3cret:with:colons")))
                .await
        );
        assert_eq!(a.cached(), 1);
        // Second time from the cache: still allowed, nothing added.
        assert!(
            a.allows(Some(&header("prometheus", "s3cret:with:colons")))
                .await
        );
        assert_eq!(a.cached(), 1);
    }

    #[tokio::test]
    async fn wrong_password_unknown_user_and_garbage_fail() {
        let a = auth("prometheus", "s3cret");
        assert!(!a.allows(Some(&header("prometheus", "S3cret"))).await);
        assert!(!a.allows(Some(&header("nobody", "s3cret"))).await);
        assert!(!a.allows(None).await);
        for raw in ["Basic", "Basic !!!", "Bearer abc", "Basic cHJvbWV0aGV1cw=="] {
            assert!(
                !a.allows(Some(&HeaderValue::from_static(raw))).await,
                "{raw}"
            );
        }
        assert_eq!(a.cached(), 0);
    }

    #[tokio::test]
    async fn a_remembered_password_stops_working_for_a_new_hash() {
        let a = auth("u", "old");
        assert!(a.allows(Some(&header("u", "old"))).await);
        // A reload builds a new BasicAuth: the old cache goes with the old one.
        let b = auth("u", "new");
        assert!(!b.allows(Some(&header("u", "old"))).await);
        assert!(b.allows(Some(&header("u", "new"))).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_wrong_passwords_is_refused_past_the_queue_and_the_right_one_still_passes() {
        // Cost 8: each wrong password takes long enough for a queue to form.
        let hash = bcrypt::hash("s3cret", 8).unwrap();
        let a =
            Arc::new(BasicAuth::new(BTreeMap::from([("prometheus".to_owned(), hash)])).unwrap());
        // Remembered before the flood: costs no bcrypt during it.
        assert!(a.allows(Some(&header("prometheus", "s3cret"))).await);
        let flood: Vec<_> = (0..4 * (BCRYPT_PARALLEL + BCRYPT_QUEUE))
            .map(|i| {
                let a = a.clone();
                tokio::spawn(async move {
                    a.check(Some(&header("prometheus", &format!("wrong{i}"))))
                        .await
                })
            })
            .collect();
        // While they run, the right password is answered from the cache.
        assert_eq!(
            a.check(Some(&header("prometheus", "s3cret"))).await,
            Verdict::Allowed
        );
        let mut busy = 0;
        for t in flood {
            match t.await.unwrap() {
                Verdict::Busy => busy += 1,
                Verdict::Denied => {}
                Verdict::Allowed => panic!("a wrong password passed"),
            }
        }
        assert!(busy > 0, "every one of the flood was queued for bcrypt");
        assert_eq!(a.queued.load(Ordering::Acquire), 0);
    }

    #[test]
    fn scheme_is_case_insensitive_and_hashes_are_checked() {
        let v = HeaderValue::from_static("basic dTpw");
        assert_eq!(decode(&v), Some(("u".into(), "p".into())));
        assert!(check_hash(DUMMY_HASH).is_ok());
        // A real hash, so an unknown user costs a full bcrypt run.
        assert_eq!(bcrypt::verify("anything", DUMMY_HASH).ok(), Some(false));
        assert!(check_hash("plaintext").is_err());
        assert!(check_hash("$1$abc$def").is_err());
    }
}
