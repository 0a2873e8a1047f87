//! What a backup reads: the source paths (made absolute, and the tree of them the walker
//! descends) and the stream sources (standard input, commands), each stored as one file at its
//! path; the paths they cover must not collide (format-spec §8.1).

use super::streams::{self, Kind};
use super::walk::{build_trie, Ctx, Trie};
use super::BackupSource;
use crate::error::{Error, Result};
use crate::fsmeta;
use crate::snapshot::SourceRecord;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A backup's sources, checked: the file system paths and the streams.
pub(super) struct Plan {
    /// The absolute file system paths, sorted, without duplicates.
    pub(super) fs: Vec<PathBuf>,
    /// The streams, in the order given; `index` counts from the file system paths' records.
    pub(super) streams: Vec<(usize, String, Kind)>,
    /// Every absolute path the snapshot covers (field `paths`), sorted.
    pub(super) paths: Vec<Vec<u8>>,
    /// The records of the file system paths.
    pub(super) fs_records: Vec<SourceRecord>,
}

/// Checks `sources` and says what the backup reads.
pub(super) fn resolve(sources: Vec<BackupSource>) -> Result<Plan> {
    let mut fs = Vec::new();
    let mut streams_given = Vec::new();
    for s in sources {
        match s {
            BackupSource::Paths(p) => {
                for x in &p {
                    fs.push(absolute(x)?);
                }
            }
            BackupSource::Stream { path, reader } => streams_given.push((stream_path(&path)?, Kind::Reader(reader))),
            BackupSource::Command { path, command } => {
                streams_given.push((stream_path(&path)?, Kind::Command(command)))
            }
        }
    }
    if fs.is_empty() && streams_given.is_empty() {
        return Err(Error::Usage("nothing to back up: give at least one path or stream".into()));
    }
    fs.sort();
    fs.dedup();
    // A stream must not be a backed-up path, lie inside one, or hold one; nor may two streams.
    let stream_abs: Vec<PathBuf> = streams_given.iter().map(|(p, _)| Path::new("/").join(p)).collect();
    for (i, a) in stream_abs.iter().enumerate() {
        for b in &fs {
            if overlaps(a, b) {
                return Err(Error::Usage(format!(
                    "stream path {} collides with the backed-up path {}",
                    a.display(),
                    b.display()
                )));
            }
        }
        for b in &stream_abs[..i] {
            if overlaps(a, b) {
                return Err(Error::Usage(format!(
                    "stream path {} collides with the stream path {}",
                    a.display(),
                    b.display()
                )));
            }
        }
    }
    let mut all: Vec<PathBuf> = fs.iter().cloned().chain(stream_abs).collect();
    all.sort();
    let fs_records: Vec<SourceRecord> =
        fs.iter().map(|p| SourceRecord::Paths { path: p.as_os_str().as_bytes().to_vec() }).collect();
    let base = fs_records.len();
    Ok(Plan {
        paths: all.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect(),
        streams: streams_given.into_iter().enumerate().map(|(i, (p, k))| (base + i, p, k)).collect(),
        fs,
        fs_records,
    })
}

/// True when one path is the other or lies inside it.
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// A stream's path inside the snapshot, relative to `/`: one or more plain names joined by `/`
/// (a leading `/` is dropped).
pub(super) fn stream_path(path: &str) -> Result<String> {
    let p = path.trim_start_matches('/');
    let bad = p.is_empty() || p.contains('\0') || p.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::Usage(format!(
            "stream path {path:?} must be file names joined by `/` (no empty, `.` or `..` parts)"
        )));
    }
    Ok(p.to_string())
}

/// The tree the walker descends: the file system paths and, as leaves, the streams, each with
/// the receiver of its outcome.
pub(super) fn trie(plan: &Plan, outcomes: Vec<(String, crossbeam_channel::Receiver<streams::Outcome>)>) -> Trie {
    let mut trie = build_trie(&plan.fs);
    for (path, rx) in outcomes {
        trie.add_stream(&path, rx);
    }
    trie
}

/// Walks `trie` from `/`, feeding the pipeline through `ctx`.
pub(super) fn walk(ctx: &Ctx, trie: &Trie, has_fs: bool) {
    let root = Path::new("/");
    let handle = if has_fs {
        match fsmeta::open_dir_for_read(None, root.as_os_str(), true) {
            Ok(h) => Some(h),
            Err(e) => {
                ctx.error(root, format!("cannot open: {e}"));
                None
            }
        }
    } else {
        None
    };
    match handle {
        Some(h) if trie.selected => {
            // "/" itself was given: walk its entries.
            if let Ok(st) = fsmeta::fstat(&h) {
                ctx.children(&h, root, st.dev);
            }
        }
        h => {
            ctx.virtual_dir(h.as_ref(), root, &trie.children);
        }
    }
}

/// Makes paths absolute and lexically normal (no `.`, `..` or trailing `/`).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let base =
        if p.is_absolute() { PathBuf::from("/") } else { std::env::current_dir().map_err(|e| Error::io(p, e))? };
    let mut out = base;
    for c in p.components() {
        match c {
            std::path::Component::RootDir => out = PathBuf::from("/"),
            std::path::Component::CurDir | std::path::Component::Prefix(_) => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_paths_are_names_joined_by_slashes() {
        assert_eq!(stream_path("redis/dump.rdb").unwrap(), "redis/dump.rdb");
        assert_eq!(stream_path("/app.sql").unwrap(), "app.sql", "a leading / is dropped");
        for bad in ["", "/", "a//b", "a/./b", "../x", "a/..", "a/", "nul\0"] {
            assert!(matches!(stream_path(bad), Err(Error::Usage(_))), "{bad:?} accepted");
        }
    }

    #[test]
    fn colliding_sources_are_refused_before_anything_runs() {
        let cmd = |p: &str| BackupSource::Command { path: p.into(), command: "exit 0".into() };
        let fs = || BackupSource::Paths(vec![PathBuf::from("/etc/app")]);
        for (sources, names) in [
            (vec![fs(), cmd("etc/app/x")], ["/etc/app/x", "/etc/app"]),
            (vec![fs(), cmd("etc")], ["/etc", "/etc/app"]),
            (vec![cmd("a"), cmd("a/b")], ["/a/b", "/a"]),
        ] {
            match resolve(sources) {
                Err(Error::Usage(m)) => assert!(names.iter().all(|n| m.contains(n)), "{m}"),
                other => panic!("not refused: {:?}", other.map(|p| p.paths)),
            }
        }
        // Siblings and a stream beside a directory are fine; `paths` holds all of them, sorted.
        let plan = resolve(vec![fs(), cmd("etc/app.sql"), cmd("a/b"), cmd("a/c")]).unwrap();
        let paths: Vec<&[u8]> = plan.paths.iter().map(|p| p.as_slice()).collect();
        assert_eq!(paths, [&b"/a/b"[..], b"/a/c", b"/etc/app", b"/etc/app.sql"]);
        assert_eq!(
            plan.streams.iter().map(|(i, p, _)| (*i, p.as_str())).collect::<Vec<_>>(),
            [(1, "etc/app.sql"), (2, "a/b"), (3, "a/c")]
        );
    }
}
