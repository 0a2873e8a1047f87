//! `tag`: changes the tags of snapshots by rewriting their manifests (format-spec §8.3). The new
//! manifest is the old one with its tags changed and the old id appended to `replaces`; it is
//! written first, then the old manifest is deleted (format-spec §11). Who signs it: this key, when
//! the old manifest was attributed and unflagged (the original writer is then kept in the manifest's
//! `origin` field, so retention groups the snapshot as before, [`crate::select::Listed::writer_group`]);
//! nobody, when it was unattributed; and a flagged manifest, rewritten only with `force`, keeps its
//! writer block and `origin` verbatim; the block no longer verifies: it stays flagged. Tags are the
//! user's only. Prints nothing.

use crate::error::{Error, Override, Result};
use crate::id::{KeyId, SnapshotId};
use crate::repository::ReadRepository;
use crate::select::Listed;
use crate::snapshot::Snapshot;
use crate::writer::{Writer, WriterOptions};

/// How the tags change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Add these (kept once) and remove those.
    Edit {
        /// Tags to add.
        add: Vec<String>,
        /// Tags to remove.
        remove: Vec<String>,
    },
    /// Replace every tag by these (empty: no tag).
    Set(Vec<String>),
}

impl Change {
    /// The tags after the change, from `before` (order kept, new tags appended, each once, empty
    /// ones left out).
    pub fn apply(&self, before: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |t: &String| {
            if !t.is_empty() && !out.contains(t) {
                out.push(t.clone());
            }
        };
        match self {
            Change::Set(tags) => tags.iter().for_each(&mut push),
            Change::Edit { add, remove } => {
                before.iter().filter(|t| !remove.contains(t)).for_each(&mut push);
                add.iter().for_each(&mut push);
            }
        }
        out
    }

    /// One line for the ledger: `add a,b remove c` or `set a,b`.
    pub fn describe(&self) -> String {
        match self {
            Change::Set(t) => format!("set {}", t.join(",")),
            Change::Edit { add, remove } => {
                let mut parts = Vec::new();
                if !add.is_empty() {
                    parts.push(format!("add {}", add.join(",")));
                }
                if !remove.is_empty() {
                    parts.push(format!("remove {}", remove.join(",")));
                }
                parts.join(" ")
            }
        }
    }

    /// Refuses tags a user may not give: any with a newline or comma.
    pub fn check(&self) -> Result<()> {
        let given: Vec<&String> = match self {
            Change::Set(t) => t.iter().collect(),
            Change::Edit { add, remove } => add.iter().chain(remove).collect(),
        };
        for t in given {
            if t.contains([',', '\n']) {
                return Err(Error::Usage(format!("tag {t:?} contains a comma or a newline")));
            }
        }
        Ok(())
    }
}

/// What happened to one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tagged {
    /// The snapshot named.
    pub old: SnapshotId,
    /// Its replacement; `None` when the tags did not change or on a dry run.
    pub new: Option<SnapshotId>,
    /// Tags before.
    pub before: Vec<String>,
    /// Tags after.
    pub after: Vec<String>,
    /// The new manifest's `origin` (format-spec §8.3): the original writer (64 hex) it names when
    /// this key re-signs another writer's snapshot, or the old `origin` kept verbatim when it is
    /// not re-signed; `None` when it names none.
    pub origin: Option<crate::id::KeyId>,
    /// True when the new manifest is (or would be) signed by this key.
    pub signed: bool,
    /// True when nothing changed (nothing is written).
    pub unchanged: bool,
}

/// Rewrites each of `targets` with its tags changed by `change` (format-spec §8.3). Refuses
/// (before writing anything) a flagged snapshot unless `force`. With `dry_run` writes nothing.
pub fn tag(
    repo: &ReadRepository,
    targets: &[Listed],
    change: &Change,
    force: bool,
    dry_run: bool,
) -> Result<Vec<Tagged>> {
    change.check()?;
    if !force {
        if let Some(l) = targets.iter().find(|l| !l.eligible()) {
            let flags: Vec<&str> = l.flags.iter().map(|f| f.as_str()).collect();
            return Err(Error::refused_unless(
                format!(
                    "snapshot {} is flagged ({}); tagging would rewrite a manifest nobody can vouch for; nothing was \
                     changed",
                    l.id,
                    flags.join(",")
                ),
                Override::Force,
            ));
        }
    }
    let me = repo.key_id();
    let mut out = Vec::new();
    for l in targets {
        let before = l.snapshot.tags().to_vec();
        let after = change.apply(&before);
        if after == before {
            let origin = l.snapshot.origin();
            out.push(Tagged { old: l.id, new: None, before, after, origin, signed: false, unchanged: true });
            continue;
        }
        let (mut snap, sign) = replacement(l, me);
        let v = snap.v3_mut();
        let origin = v.origin;
        v.tags = after.clone();
        let new = if dry_run {
            None
        } else {
            let writer = Writer::new(repo, WriterOptions::default(), "tag")?;
            Some(commit_replacement(repo, writer, &l.id, &snap, sign, true)?)
        };
        out.push(Tagged { old: l.id, new, before, after, origin, signed: sign, unchanged: false });
    }
    // The ledger entry (format-spec §13.3): each old manifest, its replacement, and the change.
    let replaced: Vec<crate::ledger::Replaced> =
        out.iter().filter_map(|t| t.new.map(|new| crate::ledger::Replaced { old: t.old, new })).collect();
    if !replaced.is_empty() {
        repo.ledger_record(crate::ledger::Event::Tag {
            detail: change.describe(),
            removed: replaced.iter().map(|r| r.old).collect(),
            replaced,
        })?;
    }
    Ok(out)
}

/// The manifest that replaces `l`'s (format-spec §8.3), before the caller's own changes: a `V3`
/// copy with `l`'s id appended to `replaces` and `origin` set as the writer rule says, and
/// whether it is to be signed by this key (`me`): when `l` is attributed and unflagged. An
/// unattributed or flagged manifest keeps its `origin` (and writer block) verbatim: `origin` is
/// honoured only on a manifest a full key signed, which this one will not be.
pub(crate) fn replacement(l: &Listed, me: KeyId) -> (Snapshot, bool) {
    let sign = l.eligible() && l.attribution.key_id().is_some();
    let mut snap = l.snapshot.clone();
    let v = snap.v3_mut();
    if sign {
        // The writer retention counts it under (its honoured origin, else its signer), kept
        // across rewrites by other keys; none when that is this key.
        v.origin = l.origin().or(l.attribution.key_id()).filter(|k| *k != me);
    }
    v.replaces.push(l.id);
    (snap, sign)
}

/// Commits `snap`, the replacement of `old`, through `writer` (everything it stored first, then
/// the manifest, signed by this key when `sign`), and only then, when `remove`, deletes `old`
/// (format-spec §11): a crash in between leaves both.
pub(crate) fn commit_replacement(
    repo: &ReadRepository,
    writer: Writer<'_>,
    old: &SnapshotId,
    snap: &Snapshot,
    sign: bool,
    remove: bool,
) -> Result<SnapshotId> {
    let id = writer.commit_rewritten(snap, sign)?;
    if remove {
        repo.remove_snapshot(old)?;
    }
    Ok(id)
}
