//! The ledger as the user sees it (format-spec §13): [`log`] in reading order, the one-line
//! [`head`] to anchor outside the repository, and [`verify`], which proves that every entry
//! authenticates, is signed by its key and links, that every snapshot in storage is recorded and
//! every recorded snapshot missing from storage was removed by an entry that may remove it, and
//! that no entry this client (or an anchor) saw is gone. [`record`] appends one entry; the
//! recording operations call it once, at the end of their work.

use crate::codec::ledger::{self as codec, Signed};
use crate::error::{Error, Result};
use crate::id::{EntryId, KeyId, SnapshotId};
use crate::keyfile::KeyKind;
use crate::layout::StoredId;
use crate::ledger::{self, EntryKind, Event};
use crate::repository::ledger::{heads_of, StoredEntry};
use crate::repository::{ReadRepository, Repository};
use crate::time::Time;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Appends an entry for `event` (format-spec §13.4) and returns its id.
pub fn record(repo: &Repository, event: Event) -> Result<EntryId> {
    repo.ledger_record(event)
}

/// One entry as `ledger log` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    /// Its id.
    pub id: EntryId,
    /// When it was written.
    pub time: Time,
    /// What it records.
    pub kind: EntryKind,
    /// The writing key.
    pub key_id: KeyId,
    /// The heads its writer saw.
    pub parents: Vec<EntryId>,
    /// The writer's host (a full key reads it).
    pub host: Option<String>,
    /// The writer's user.
    pub user: Option<String>,
    /// The event (a full key reads it).
    pub event: Option<Event>,
}

/// The entries in reading order (format-spec §13.4), those at or after `since` and of `kind`
/// when given. Entries that do not authenticate are left out (`verify` names them). A write-only
/// key sees headers only.
pub fn log(repo: &Repository, since: Option<Time>, kind: Option<EntryKind>) -> Result<Vec<LogEntry>> {
    let (entries, _) = repo.ledger_entries()?;
    let readable = repo.keys().can_read();
    let by_id: HashMap<EntryId, &StoredEntry> = entries.iter().map(|e| (e.id, e)).collect();
    let mut out = Vec::new();
    for id in ordered(&entries) {
        let e = by_id[&id];
        let Ok(h) = &e.header else { continue };
        if since.is_some_and(|s| h.time() < s) || kind.is_some_and(|k| h.kind() != k) {
            continue;
        }
        let body = if readable { e.body(repo).ok() } else { None };
        out.push(LogEntry {
            id,
            time: h.time(),
            kind: h.kind(),
            key_id: h.key_id(),
            parents: h.parents().to_vec(),
            host: body.as_ref().map(|b| b.host().to_string()),
            user: body.as_ref().map(|b| b.user().to_string()),
            event: body.map(|b| b.event().clone()),
        });
    }
    Ok(out)
}

/// The ids of the entries whose header decodes, in reading order.
fn ordered(entries: &[StoredEntry]) -> Vec<EntryId> {
    let list: Vec<(EntryId, Time, Vec<EntryId>)> =
        entries.iter().filter_map(|e| e.header.as_ref().ok().map(|h| (e.id, h.time(), h.parents().to_vec()))).collect();
    ledger::order(&list)
}

/// What `ledger head` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Head {
    /// The one line to keep outside the repository (format-spec §13.6).
    pub line: String,
    /// Entries that authenticate.
    pub entries: u64,
    /// The heads.
    pub heads: Vec<EntryId>,
}

/// The current heads of the ledger as one line; also remembered as seen by this client.
pub fn head(repo: &Repository) -> Result<Head> {
    let (entries, _) = repo.ledger_entries()?;
    let heads = heads_of(&entries);
    let count = entries.iter().filter(|e| e.header.is_ok()).count() as u64;
    let present: HashSet<EntryId> = entries.iter().map(|e| e.id).collect();
    repo.ledger_remember(&heads, &present)?;
    Ok(Head { line: ledger::head_line(&repo.keys().repo_id, count, &heads), entries: count, heads })
}

/// One thing `ledger verify` found wrong, named by the object it is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable code: `entry-invalid`, `entry-forged`, `entry-unsigned`, `entry-not-permitted`,
    /// `entry-missing`, `object-foreign`, `snapshot-unrecorded`, `snapshot-missing`.
    pub code: &'static str,
    /// The object: `ledger/<id>` or `snapshots/<id>`, or another path under `ledger/`.
    pub object: String,
    /// What is wrong.
    pub message: String,
}

/// What `ledger verify` looked at and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Entries in storage.
    pub entries: u64,
    /// The heads now.
    pub heads: Vec<EntryId>,
    /// Snapshots in storage.
    pub snapshots: u64,
    /// What is wrong; empty when the ledger verifies.
    pub findings: Vec<Finding>,
}

/// How far an entry is trusted, from its signature and its key's certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Signed by a full key that was not revoked when it wrote: may record removals.
    Full,
    /// Signed by a write-only key: records what it wrote, never a removal.
    WriteOnly,
    /// Authenticated (its name is the keyed hash) but not attributed: records what it wrote.
    Unattributed,
}

/// Verifies the ledger (format-spec §13.5). `anchor` is a line from `ledger head`; a malformed
/// one is a usage error. Afterwards the current heads are remembered as seen.
pub fn verify(repo: &ReadRepository, anchor: Option<&str>) -> Result<VerifyReport> {
    let anchored = match anchor {
        Some(line) => Some(
            ledger::parse_head_line(&repo.keys().repo_id, line).map_err(|e| Error::Usage(format!("--anchor: {e}")))?,
        ),
        None => None,
    };
    let (entries, strange) = repo.ledger_entries()?;
    let certs = repo.certificates()?;
    let mut report = VerifyReport { entries: entries.len() as u64, heads: heads_of(&entries), ..Default::default() };
    let mut findings = Vec::new();
    let mut find = |code: &'static str, object: String, message: String| {
        findings.push(Finding { code, object, message });
    };
    for path in strange {
        find("object-foreign", path, "not the name of a ledger entry".into());
    }
    let present: HashSet<EntryId> = entries.iter().map(|e| e.id).collect();
    // Which entry accounts for each snapshot it wrote, and which removed it (with its trust).
    let mut created: BTreeMap<SnapshotId, EntryId> = BTreeMap::new();
    let mut removed: HashMap<SnapshotId, EntryId> = HashMap::new();
    let mut missing: BTreeMap<EntryId, String> = BTreeMap::new();
    for e in &entries {
        let path = ledger::entry_path(&e.id);
        if let Err(m) = &e.header {
            // Unreadable (oversized) or refused when listed: the listing's reason.
            find("entry-invalid", path, m.clone());
            continue;
        }
        let split = match codec::decode_entry(repo.keys(), &e.id, &e.bytes) {
            Ok(s) => s,
            Err(m) => {
                find("entry-invalid", path, m);
                continue;
            }
        };
        let h = &split.header;
        for p in h.parents() {
            if !present.contains(p) {
                missing.entry(*p).or_insert_with(|| format!("named as a parent by {path}, not in storage"));
            }
        }
        let body = match codec::open_body(repo.keys(), &split) {
            Ok(b) => b,
            Err(m) => {
                find("entry-invalid", path, m);
                continue;
            }
        };
        let key = h.key_id();
        let trust = match certs.get(&key) {
            None => {
                find(
                    "entry-unsigned",
                    path.clone(),
                    format!("key {key} has no certificate; the entry is not attributed"),
                );
                Trust::Unattributed
            }
            Some(Err(m)) => {
                find("entry-forged", path.clone(), format!("the certificate of key {key} does not verify: {m}"));
                Trust::Unattributed
            }
            Some(Ok(c)) => match codec::signature(&split, &c.key_public()) {
                Signed::Valid if certs.revoked(&key).is_some_and(|t| h.time() > t) => {
                    find("entry-forged", path.clone(), format!("written by key {key} after its revocation"));
                    Trust::Unattributed
                }
                Signed::Valid if c.kind() == KeyKind::Full => Trust::Full,
                Signed::Valid => Trust::WriteOnly,
                Signed::Unsigned => {
                    find(
                        "entry-unsigned",
                        path.clone(),
                        format!("not signed (key {key} was opened without its password)"),
                    );
                    Trust::Unattributed
                }
                Signed::Invalid => {
                    find("entry-forged", path.clone(), format!("the signature does not verify under key {key}"));
                    Trust::Unattributed
                }
            },
        };
        let event = body.event();
        for s in event.created() {
            created.entry(s).or_insert(e.id);
        }
        let gone = event.removed();
        if !gone.is_empty() && trust != Trust::Full {
            find(
                "entry-not-permitted",
                path.clone(),
                format!(
                    "a {} entry removing {} snapshot(s), not signed by a full key; its removals do not count",
                    h.kind().name(),
                    gone.len()
                ),
            );
            continue;
        }
        for s in gone {
            removed.entry(s).or_insert(e.id);
        }
    }
    for h in repo.ledger_seen_heads() {
        if !present.contains(&h) {
            missing.entry(h).or_insert_with(|| "seen by this client, gone from storage (rollback or deletion)".into());
        }
    }
    if let Some((_, heads)) = &anchored {
        for h in heads {
            if !present.contains(h) {
                missing.insert(*h, "named by the anchor, gone from storage (rollback or deletion)".into());
            }
        }
    }
    for (id, why) in missing {
        find("entry-missing", ledger::entry_path(&id), why);
    }
    let in_storage: BTreeSet<SnapshotId> =
        repo.backend().list(SnapshotId::TYPE.dir())?.iter().filter_map(|o| SnapshotId::from_path(&o.path)).collect();
    report.snapshots = in_storage.len() as u64;
    for s in &in_storage {
        if !created.contains_key(s) {
            find("snapshot-unrecorded", s.path(), "in storage, but no ledger entry records writing it".into());
        }
    }
    for (s, by) in &created {
        if !in_storage.contains(s) && !removed.contains_key(s) {
            find(
                "snapshot-missing",
                s.path(),
                format!("recorded by {}, gone from storage, and no entry removed it", ledger::entry_path(by)),
            );
        }
    }
    report.findings = findings;
    repo.ledger_remember(&report.heads, &present)?;
    Ok(report)
}
