//! Choosing snapshots: the SNAPSHOT argument ([`SnapshotSpec`]: `latest`, a full id or a unique
//! prefix), the `--host`/`--tag`/`--path`/`--writer` filter ([`Filter`]), `--as-of` (the newest
//! snapshot at or before a time, per host and paths), and who wrote each snapshot ([`Listed`],
//! [`Flag`]: forged, host-not-allowed, revoked and future snapshots are never chosen by `latest` or
//! `--as-of`, format-spec §4.3). Reads snapshot manifests through the repository; writes nothing,
//! prints nothing.

use crate::backup::absolute;
use crate::cert::Attribution;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::repository::ReadRepository;
use crate::snapshot::Snapshot;
use crate::time::Time;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Shortest snapshot id prefix accepted.
pub const MIN_PREFIX: usize = 4;

/// A SNAPSHOT argument, checked for form: `latest`, 64 hex digits, or a prefix of at least
/// [`MIN_PREFIX`] hex digits (stored lowercase). Whether it names a snapshot is decided by
/// [`resolve`]: a malformed argument is refused here, one that matches nothing there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotSpec {
    /// The newest snapshot that passes the filter.
    Latest,
    /// A full id.
    Id(SnapshotId),
    /// A prefix of an id: lowercase hex, at least [`MIN_PREFIX`] and fewer than 64 digits.
    Prefix(String),
}

impl FromStr for SnapshotSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "latest" {
            return Ok(SnapshotSpec::Latest);
        }
        if let Some(id) = SnapshotId::from_hex(&s.to_ascii_lowercase()) {
            return Ok(SnapshotSpec::Id(id));
        }
        if s.len() >= MIN_PREFIX && s.len() < 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(SnapshotSpec::Prefix(s.to_ascii_lowercase()));
        }
        Err(format!("{s:?} is not a snapshot id, a prefix of at least {MIN_PREFIX} hex digits, or `latest`"))
    }
}

impl fmt::Display for SnapshotSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotSpec::Latest => f.write_str("latest"),
            SnapshotSpec::Id(id) => write!(f, "{id}"),
            SnapshotSpec::Prefix(p) => f.write_str(p),
        }
    }
}

/// A snapshot dated more than this many seconds after now is [`Flag::Future`].
pub const FUTURE_SLACK_SECS: i64 = 3600;

/// Why a snapshot is excluded from `latest`, `--as-of` and retention policies (format-spec §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    /// Its writer block does not verify.
    Forged,
    /// Its writer's certificate binds the key to other hosts.
    HostNotAllowed,
    /// Its writer key was revoked before the snapshot's time.
    Revoked,
    /// Dated more than [`FUTURE_SLACK_SECS`] after now.
    Future,
}

impl Flag {
    /// `forged`, `host-not-allowed`, `revoked`, `future`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Forged => "forged",
            Flag::HostNotAllowed => "host-not-allowed",
            Flag::Revoked => "revoked",
            Flag::Future => "future",
        }
    }
}

/// The flags of a snapshot of time `time` attributed as `att`, which may claim its host when
/// `host_allowed` (see [`crate::repository::attribution::host_allowed`]), at `now`.
pub fn flags(att: &Attribution, host_allowed: bool, time: Time, now: Time) -> Vec<Flag> {
    let mut f = Vec::new();
    if matches!(att, Attribution::Forged(_)) {
        f.push(Flag::Forged);
    } else if !host_allowed {
        f.push(Flag::HostNotAllowed);
    }
    if matches!(att, Attribution::Attributed { revoked: Some(_), .. }) {
        f.push(Flag::Revoked);
    }
    if time.secs > now.secs.saturating_add(FUTURE_SLACK_SECS) {
        f.push(Flag::Future);
    }
    f
}

/// A snapshot with who wrote it and its flags.
#[derive(Clone, Debug)]
pub struct Listed {
    /// Its id.
    pub id: SnapshotId,
    /// The manifest.
    pub snapshot: Snapshot,
    /// Who wrote it.
    pub attribution: Attribution,
    /// Why it is excluded (empty: it is not).
    pub flags: Vec<Flag>,
}

impl Listed {
    /// True when `latest`, `--as-of` and retention policies may choose it.
    pub fn eligible(&self) -> bool {
        self.flags.is_empty()
    }
    /// The original writer a rewritten manifest names in its `origin` field, when a reader honours
    /// it (format-spec §8.3): the manifest is attributed to a full key (not revoked at its time),
    /// unflagged, and its `replaces` is not empty. `None` anywhere else, whatever the field says.
    pub fn origin(&self) -> Option<crate::id::KeyId> {
        let honoured = self.attribution.is_full_key() && self.eligible() && !self.snapshot.replaces().is_empty();
        honoured.then(|| self.snapshot.origin()).flatten()
    }
    /// The retention group of its writer: the honoured [`Listed::origin`] of a manifest `tag`
    /// rewrote and re-signed, else the attributed key id, or `unattributed`.
    pub fn writer_group(&self) -> String {
        match self.origin().or(self.attribution.key_id()) {
            Some(k) => k.to_hex(),
            None => "unattributed".into(),
        }
    }
}

/// Every readable snapshot with its attribution and flags, oldest first.
pub fn list_all(repo: &ReadRepository) -> Result<Vec<Listed>> {
    let now = Time::now();
    Ok(repo
        .list_snapshots_attributed()?
        .into_iter()
        .map(|(id, snapshot, attribution, host_allowed)| {
            let flags = flags(&attribution, host_allowed, snapshot.time(), now);
            Listed { id, snapshot, attribution, flags }
        })
        .collect())
}

/// Which snapshots a command looks at: all of `host` (if given), carrying every tag in `tags`,
/// including every path in `paths` (made absolute as backup makes them), and written by `writer`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this host.
    pub host: Option<String>,
    /// Only snapshots with all of these tags.
    pub tags: Vec<String>,
    /// Only snapshots that include all of these paths.
    pub paths: Vec<PathBuf>,
    /// Only snapshots attributed to a key whose id starts with this (lowercase hex), or, when
    /// `unattributed`, only unattributed ones.
    pub writer: Option<String>,
}

impl Filter {
    /// True when `snap` passes.
    pub fn matches(&self, snap: &Snapshot) -> bool {
        if self.host.as_ref().is_some_and(|h| h != snap.host()) {
            return false;
        }
        if !self.tags.iter().all(|t| snap.tags().contains(t)) {
            return false;
        }
        self.paths.iter().all(|p| {
            let want = absolute(p).unwrap_or_else(|_| p.to_path_buf());
            snap.paths().iter().any(|sp| sp.as_slice() == want.as_os_str().as_bytes())
        })
    }

    /// True when a snapshot attributed as `att` passes the `writer` part.
    pub fn matches_writer(&self, att: &Attribution) -> bool {
        match (&self.writer, att) {
            (None, _) => true,
            (Some(w), Attribution::Unattributed) => w == "unattributed",
            (Some(w), a) => a.key_id().is_some_and(|k| k.to_hex().starts_with(&w.to_ascii_lowercase())),
        }
    }

    /// Every readable snapshot that passes, flagged ones included, oldest first.
    pub fn entries(&self, repo: &ReadRepository) -> Result<Vec<Listed>> {
        Ok(list_all(repo)?
            .into_iter()
            .filter(|l| {
                self.matches(&l.snapshot)
                    && (self.matches_writer(&l.attribution)
                        || self.writer.as_ref().is_some_and(|w| l.writer_group().starts_with(&w.to_ascii_lowercase())))
            })
            .collect())
    }

    /// The readable snapshots that pass and that `latest`, `--as-of` and retention may choose
    /// (no [`Flag`]), oldest first.
    pub fn list(&self, repo: &ReadRepository) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(self.entries(repo)?.into_iter().filter(Listed::eligible).map(|l| (l.id, l.snapshot)).collect())
    }
}

/// The id `spec` names: `latest` is the newest of `candidates`; an id or prefix is looked up among
/// every snapshot of the repository. No match is [`Error::NotFound`]; an ambiguous prefix is
/// [`Error::Invalid`].
pub fn resolve(
    repo: &ReadRepository,
    spec: &SnapshotSpec,
    candidates: &[(SnapshotId, Snapshot)],
) -> Result<SnapshotId> {
    let prefix = match spec {
        SnapshotSpec::Latest => {
            return candidates
                .iter()
                .max_by(|a, b| a.1.time().cmp(&b.1.time()).then(a.0.cmp(&b.0)))
                .map(|(id, _)| *id)
                .ok_or_else(|| Error::NotFound("snapshot `latest` (no snapshot matches)".into()));
        }
        SnapshotSpec::Id(id) => id.to_hex(),
        SnapshotSpec::Prefix(p) => p.clone(),
    };
    let ids = repo.snapshot_ids()?;
    let m: Vec<&SnapshotId> = ids.iter().filter(|id| id.to_hex().starts_with(&prefix)).collect();
    match m.len() {
        0 => Err(Error::NotFound(format!("snapshot {spec}"))),
        1 => Ok(*m[0]),
        n => Err(Error::Usage(format!("snapshot prefix {spec} is ambiguous ({n} snapshots match)"))),
    }
}

/// The snapshot `spec` names, loaded (`latest` honours `filter`).
pub fn select(repo: &ReadRepository, spec: &SnapshotSpec, filter: &Filter) -> Result<(SnapshotId, Snapshot)> {
    let candidates = if *spec == SnapshotSpec::Latest { filter.list(repo)? } else { Vec::new() };
    let id = resolve(repo, spec, &candidates)?;
    if let Some((_, s)) = candidates.iter().find(|(i, _)| *i == id) {
        return Ok((id, s.clone()));
    }
    Ok((id, repo.load_snapshot(&id)?))
}

/// The snapshots `specs` name, each once, in the order given; with no spec, every snapshot that
/// passes `filter` ([`Filter::list`]).
pub fn select_many(
    repo: &ReadRepository,
    specs: &[SnapshotSpec],
    filter: &Filter,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    if specs.is_empty() {
        return filter.list(repo);
    }
    let mut v: Vec<(SnapshotId, Snapshot)> = Vec::new();
    for spec in specs {
        let s = select(repo, spec, filter)?;
        if !v.iter().any(|(id, _)| *id == s.0) {
            v.push(s);
        }
    }
    Ok(v)
}

/// The newest snapshot at or before `t` of each (host, paths) group that passes `filter`, in
/// group order.
pub fn as_of(repo: &ReadRepository, t: Time, filter: &Filter) -> Result<Vec<(SnapshotId, Snapshot)>> {
    type Group = (String, Vec<Vec<u8>>);
    let mut best: BTreeMap<Group, (SnapshotId, Snapshot)> = BTreeMap::new();
    for (id, s) in filter.list(repo)? {
        if s.time() > t {
            continue;
        }
        // The listing is oldest first: a later snapshot replaces an earlier one.
        best.insert((s.host().to_string(), s.paths().to_vec()), (id, s));
    }
    Ok(best.into_values().collect())
}

/// Splits `SNAPSHOT:PATH`; a relative PATH is taken from the root (`/`).
pub fn split_path_spec(spec: &str) -> (&str, Option<PathBuf>) {
    match spec.split_once(':') {
        Some((s, p)) if !p.is_empty() => {
            let p = Path::new(p);
            (s, Some(if p.is_absolute() { p.to_path_buf() } else { Path::new("/").join(p) }))
        }
        Some((s, _)) => (s, None),
        None => (spec, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked_for_form() {
        assert_eq!("latest".parse::<SnapshotSpec>(), Ok(SnapshotSpec::Latest));
        assert_eq!("ABcd".parse::<SnapshotSpec>(), Ok(SnapshotSpec::Prefix("abcd".into())));
        let full = "ab".repeat(32);
        assert_eq!(full.parse::<SnapshotSpec>(), Ok(SnapshotSpec::Id(SnapshotId([0xab; 32]))));
        for bad in ["", "abc", "zzzz", "latest2", "12345g", &"a".repeat(65)] {
            assert!(bad.parse::<SnapshotSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn path_specs() {
        assert_eq!(split_path_spec("latest"), ("latest", None));
        assert_eq!(split_path_spec("abcd:etc/x"), ("abcd", Some(PathBuf::from("/etc/x"))));
        assert_eq!(split_path_spec("abcd:/etc"), ("abcd", Some(PathBuf::from("/etc"))));
        assert_eq!(split_path_spec("abcd:"), ("abcd", None));
    }
}
