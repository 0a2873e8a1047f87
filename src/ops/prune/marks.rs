//! Prune marks and waits in storage (format-spec §10.2, §10.5): reading them with their waits,
//! the live writer sessions by backend time, and writing the wait of a new mark. Marks and waits
//! are signed by the repository key; one that does not verify (forged by a write-only key, or in
//! the MAC framing of before signatures) is ignored with a warning.

use super::lock::backend_now;
use super::PruneOptions;
use crate::codec::object;
use crate::error::Result;
use crate::layout::{Object, ObjectType};
use crate::lease::{PruneMark, PruneWait};
use crate::repository::Repository;
use crate::time::Time;
use std::collections::{HashMap, HashSet};

/// A mark in storage with its wait.
pub(super) struct StoredMark {
    pub(super) suffix: String,
    pub(super) mark: PruneMark,
    /// The wait and its backend time.
    pub(super) wait: Option<(PruneWait, Time)>,
    pub(super) wait_invalid: bool,
    /// The wait object does not verify: it is ignored, and replaced by a new one.
    pub(super) replace_wait: bool,
}

pub(super) fn stored_marks(repo: &Repository, warnings: &mut Vec<String>) -> Result<Vec<StoredMark>> {
    let b = repo.backend();
    let listing = b.list(ObjectType::Mark.dir())?;
    let waits: HashMap<String, Option<Time>> = listing
        .iter()
        .filter_map(|o| match Object::parse(&o.path) {
            Some(Object::Wait(s)) => Some((s, o.modified)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for o in &listing {
        let Some(Object::Mark(suffix)) = Object::parse(&o.path) else { continue };
        let mark = match object::decode_prune_mark(repo.keys(), &o.path, &b.read(&o.path)?) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("{}: {e}; ignored (it condemns nothing)", o.path));
                continue;
            }
        };
        let mut wait = None;
        let mut wait_invalid = false;
        let mut replace_wait = false;
        if let Some(t) = waits.get(&suffix) {
            let path = Object::Wait(suffix.clone()).path();
            match (object::decode_wait(repo.keys(), &path, &b.read(&path)?), t) {
                (Ok(w), Some(t)) => wait = Some((w, *t)),
                (Ok(_), None) => wait_invalid = true,
                (Err(e), _) => {
                    warnings.push(format!("{path}: {e}; ignored, a new wait is written"));
                    replace_wait = true;
                }
            }
        }
        out.push(StoredMark { suffix, mark, wait, wait_invalid, replace_wait });
    }
    Ok(out)
}

/// Sessions whose newest lease object is alive by backend time `now`.
pub(super) fn live_sessions(repo: &Repository, now: Time, timeout: i64) -> Result<HashSet<[u8; 32]>> {
    let mut newest: HashMap<[u8; 32], i64> = HashMap::new();
    for o in repo.backend().list(ObjectType::Lease.dir())? {
        let Some(Object::Lease { session, .. }) = Object::parse(&o.path) else { continue };
        // An object without a time counts as written now.
        let t = o.modified.map(|t| t.secs).unwrap_or(now.secs);
        let e = newest.entry(session).or_insert(t);
        *e = (*e).max(t);
    }
    Ok(newest.into_iter().filter(|(_, t)| t.saturating_add(timeout) > now.secs).map(|(s, _)| s).collect())
}

/// Lists the live writer sessions after the mark is stored and records them (format-spec §10.5).
/// With `replace`, a wait object that does not verify is deleted first.
pub(super) fn write_wait(repo: &Repository, suffix: &str, opts: &PruneOptions, replace: bool) -> Result<()> {
    if replace {
        let path = Object::Wait(suffix.to_string()).path();
        match repo.backend().read(&path) {
            Ok(bytes) if object::decode_wait(repo.keys(), &path, &bytes).is_err() => repo.backend().delete(&path)?,
            _ => {}
        }
    }
    let now = backend_now(repo)?;
    let mut sessions: Vec<[u8; 32]> = live_sessions(repo, now, opts.lease_timeout_secs)?.into_iter().collect();
    sessions.sort();
    let path = Object::Wait(suffix.to_string()).path();
    let w = PruneWait::V1 { created: Time::now(), sessions };
    repo.backend().write_new(&path, &object::encode_wait(repo.keys(), &path, &w)?)
}
