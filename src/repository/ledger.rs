//! The audit ledger of an open repository (format-spec §13): reading every entry under
//! `ledger/`, appending one whose parents are the heads this writer saw (no lock: concurrent
//! writers make a DAG), and the heads this client has seen, kept in its cache directory so that
//! a later rollback of the ledger is noticed. Any key appends; only a full key reads bodies.

use super::{hostname, username, Repository};
use crate::backend::capped::read_capped;
use crate::codec::ledger::{self as codec, NewEntry};
use crate::error::{Error, Result};
use crate::id::{EntryId, SnapshotId};
use crate::layout::StoredId;
use crate::ledger::{self, EntryBody, EntryHeader, Event, ENTRY_MAX, LEDGER_PREFIX};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

/// The file in the cache directory that holds the heads this client has seen, one id a line.
pub const SEEN_HEADS_FILE: &str = "ledger-heads";

/// The file in the cache directory that holds the parents of every entry this client has read.
pub const PARENTS_FILE: &str = "ledger-parents";

/// Serializes this process's updates of the seen-heads and parents files.
static SEEN_LOCK: Mutex<()> = Mutex::new(());

/// One object under `ledger/`, as read.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    /// Its id (its name).
    pub id: EntryId,
    /// Its stored bytes.
    pub bytes: Vec<u8>,
    /// Its header, when the name is the keyed hash of the bytes and the header decodes.
    pub header: std::result::Result<EntryHeader, String>,
}

impl StoredEntry {
    /// The body, opened with `repo`'s key (a full key).
    pub fn body(&self, repo: &Repository) -> std::result::Result<EntryBody, String> {
        let split = codec::decode_entry(repo.keys(), &self.id, &self.bytes)?;
        codec::open_body(repo.keys(), &split)
    }
}

impl Repository {
    /// Every object under `ledger/` whose name is an entry id, read (format-spec §13.2); another
    /// name under `ledger/` is returned in the second list. A storage failure other than a
    /// vanished object is returned.
    pub fn ledger_entries(&self) -> Result<(Vec<StoredEntry>, Vec<String>)> {
        let backend = self.backend().as_ref();
        let mut out = Vec::new();
        let mut strange = Vec::new();
        for o in backend.list(LEDGER_PREFIX)? {
            let Some(id) = ledger::entry_of_path(&o.path) else {
                strange.push(o.path);
                continue;
            };
            let (bytes, header) = match read_capped(backend, &o.path, ENTRY_MAX) {
                Ok(bytes) => {
                    let h = codec::decode_entry(self.keys(), &id, &bytes).map(|s| s.header);
                    (bytes, h)
                }
                Err(e @ Error::Corrupt { .. }) => (Vec::new(), Err(e.to_string())),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            out.push(StoredEntry { id, bytes, header });
        }
        out.sort_by_key(|e| e.id);
        Ok((out, strange))
    }

    /// Appends an entry for `event` (format-spec §13.4): its parents are the heads of the entries
    /// that authenticate now, it is signed with this key's signing secret when the repository
    /// was opened with a password, and it is created under its id, never overwriting. On a
    /// repository with no entry yet, an `init` entry naming the snapshots already in storage
    /// goes first. The heads this client has seen are updated. Returns the new entry's id.
    pub fn ledger_record(&self, event: Event) -> Result<EntryId> {
        let (present, mut heads) = self.ledger_current_heads()?;
        if present.is_empty() && !matches!(event, Event::Init { .. }) {
            let created: HashSet<SnapshotId> = event.created().into_iter().collect();
            let mut existing: Vec<SnapshotId> = self
                .backend()
                .list(SnapshotId::TYPE.dir())?
                .iter()
                .filter_map(|o| SnapshotId::from_path(&o.path))
                .filter(|id| !created.contains(id))
                .collect();
            existing.sort();
            heads = vec![self.ledger_write(Event::Init { existing }, Vec::new())?];
        }
        let id = self.ledger_write(event, heads.clone())?;
        self.ledger_remember_parents(&parents_line(&id, &heads));
        self.ledger_remember(&[id], &present)?;
        Ok(id)
    }

    /// The entry ids in storage and the heads among those that authenticate. The parents of an
    /// entry never change (its id hashes them), so they are kept in the cache directory
    /// (`ledger-parents`) and only entries not seen before are read.
    fn ledger_current_heads(&self) -> Result<(HashSet<EntryId>, Vec<EntryId>)> {
        let path = self.cache().dir().join(PARENTS_FILE);
        let mut known: HashMap<EntryId, Vec<EntryId>> = HashMap::new();
        for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
            let mut parts = line.split(' ');
            let (Some(id), Some(ps), None) = (parts.next(), parts.next(), parts.next()) else { continue };
            let parents: Option<Vec<EntryId>> =
                if ps == "-" { Some(Vec::new()) } else { ps.split(',').map(EntryId::from_hex).collect() };
            if let (Some(id), Some(parents)) = (EntryId::from_hex(id), parents) {
                known.insert(id, parents);
            }
        }
        let backend = self.backend().as_ref();
        let mut present = HashSet::new();
        let mut added = String::new();
        for o in backend.list(LEDGER_PREFIX)? {
            let Some(id) = ledger::entry_of_path(&o.path) else { continue };
            present.insert(id);
            if known.contains_key(&id) {
                continue;
            }
            let bytes = match read_capped(backend, &o.path, ENTRY_MAX) {
                Ok(b) => b,
                Err(Error::Corrupt { .. }) => continue,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            // An entry that does not authenticate is no parent.
            let Ok(split) = codec::decode_entry(self.keys(), &id, &bytes) else { continue };
            let parents = split.header.parents().to_vec();
            added.push_str(&parents_line(&id, &parents));
            known.insert(id, parents);
        }
        self.ledger_remember_parents(&added);
        let valid: Vec<(&EntryId, &[EntryId])> =
            known.iter().filter(|(id, _)| present.contains(id)).map(|(id, p)| (id, p.as_slice())).collect();
        Ok((present.clone(), ledger::heads(valid)))
    }

    /// [`Repository::ledger_record`] for an operation whose work is already committed: `None`
    /// when the entry was written, else what went wrong, for the operation to report as a warning.
    pub fn ledger_note(&self, event: Event) -> Option<String> {
        let kind = event.kind().name();
        self.ledger_record(event).err().map(|e| format!("the {kind} ledger entry was not written: {e}"))
    }

    fn ledger_write(&self, event: Event, parents: Vec<EntryId>) -> Result<EntryId> {
        let body = EntryBody::V1 { host: hostname(), user: username(), event };
        let new =
            NewEntry { key_id: self.key_id(), sign_secret: self.key_sign_secret(), time: self.ledger_now(), parents };
        let (id, bytes) = codec::encode_entry(self.keys(), new, &body);
        self.backend().write_new(&ledger::entry_path(&id), &bytes)?;
        Ok(id)
    }

    /// Appends `lines` to the parents file. Local state only: a failure to remember costs reads
    /// next time, nothing else.
    fn ledger_remember_parents(&self, lines: &str) {
        if lines.is_empty() {
            return;
        }
        let _guard = SEEN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.cache().dir().join(PARENTS_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(lines);
        let tmp = self.cache().dir().join(format!("{PARENTS_FILE}.tmp-{}", std::process::id()));
        if super::cache::write_private(&tmp, text.as_bytes()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    /// The heads this client has seen (format-spec §13.6), from its cache directory; empty when
    /// it has seen none or the file does not parse.
    pub fn ledger_seen_heads(&self) -> Vec<EntryId> {
        let path = self.cache().dir().join(SEEN_HEADS_FILE);
        let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
        let mut out: Vec<EntryId> = text.lines().filter_map(|l| EntryId::from_hex(l.trim())).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Remembers `heads` as the heads this client has seen, keeping every head it saw before
    /// that is not in `present` (an entry gone from storage stays remembered, so it is reported
    /// again until someone looks).
    pub fn ledger_remember(&self, heads: &[EntryId], present: &HashSet<EntryId>) -> Result<()> {
        let _guard = SEEN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut keep: BTreeSet<EntryId> = heads.iter().copied().collect();
        keep.extend(self.ledger_seen_heads().into_iter().filter(|h| !present.contains(h)));
        let text: String = keep.iter().map(|h| format!("{h}\n")).collect();
        let dir = self.cache().dir();
        let tmp = dir.join(format!("{SEEN_HEADS_FILE}.tmp-{}", std::process::id()));
        super::cache::write_private(&tmp, text.as_bytes()).map_err(|e| Error::io(&tmp, e))?;
        let path = dir.join(SEEN_HEADS_FILE);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// One line of the parents file: `<id> <parent>,<parent>,…` (`-` for none).
fn parents_line(id: &EntryId, parents: &[EntryId]) -> String {
    let list: Vec<String> = parents.iter().map(EntryId::to_hex).collect();
    format!("{id} {}\n", if list.is_empty() { "-".to_string() } else { list.join(",") })
}

/// The heads of the entries whose header decodes.
pub fn heads_of(entries: &[StoredEntry]) -> Vec<EntryId> {
    let valid: Vec<(&EntryId, &[EntryId])> =
        entries.iter().filter_map(|e| e.header.as_ref().ok().map(|h| (&e.id, h.parents()))).collect();
    ledger::heads(valid)
}
