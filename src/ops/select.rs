//! Choosing snapshots: the SNAPSHOT argument ([`SnapshotSpec`]: `latest`, a full id or a unique
//! prefix), the `--host`/`--tag`/`--path` filter ([`Filter`]) and `--as-of` (the newest snapshot at
//! or before a time, per host and paths). Reads snapshot manifests through the repository; writes
//! nothing, prints nothing.

use crate::backup::absolute;
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

/// Which snapshots a command looks at: all of `host` (if given), carrying every tag in `tags`,
/// and including every path in `paths` (made absolute as backup makes them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this host.
    pub host: Option<String>,
    /// Only snapshots with all of these tags.
    pub tags: Vec<String>,
    /// Only snapshots that include all of these paths.
    pub paths: Vec<PathBuf>,
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

    /// The readable snapshots that pass, oldest first.
    pub fn list(&self, repo: &ReadRepository) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(repo.list_snapshots()?.into_iter().filter(|(_, s)| self.matches(s)).collect())
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
