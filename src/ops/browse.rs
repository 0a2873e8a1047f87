//! Finding and listing nodes inside a snapshot's trees, through the one tree walker
//! ([`crate::trees`]).

use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::repository::ReadRepository;
use crate::tree::{Limits, Node, NodeKind};
use crate::trees::{read_dir, Control, Walker};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The node at an absolute `path` below the root tree; `None` for `/` itself.
pub fn find(repo: &ReadRepository, root: &BlobId, path: &Path) -> Result<Option<Node>> {
    let comps: Vec<&[u8]> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes()),
            _ => None,
        })
        .collect();
    let mut tree = *root;
    let mut found = None;
    for (i, c) in comps.iter().enumerate() {
        let nodes = read_dir(repo, &tree)?;
        let Ok(pos) = nodes.binary_search_by(|n| n.name.as_slice().cmp(c)) else {
            return Err(Error::NotFound(format!("path {}", path.display())));
        };
        let n = nodes[pos].clone();
        if i + 1 < comps.len() {
            match n.kind {
                NodeKind::Dir { tree: t } => tree = t,
                _ => {
                    return Err(Error::NotFound(format!(
                        "path {} ({} is not a directory)",
                        path.display(),
                        String::from_utf8_lossy(c)
                    )))
                }
            }
        }
        found = Some(n);
    }
    Ok(found)
}

/// Calls `f` for every node below directory `tree` (pre-order, names in byte order), with its
/// absolute path, within `limits` (for a caller that keeps the nodes: [`Limits::expanding`]).
/// `f` returns false to skip a directory's contents.
pub fn walk(
    repo: &ReadRepository,
    tree: &BlobId,
    base: &Path,
    limits: &Limits,
    f: &mut dyn FnMut(&Path, &Node) -> Result<bool>,
) -> Result<()> {
    let mut visit = |p: &Path, n: &Node| Ok(if f(p, n)? { Control::Descend } else { Control::Skip });
    Walker::new(repo).limits(*limits).walk(tree, base, &mut visit)
}

/// Splits `SNAPSHOT:PATH` into its parts.
pub fn split_spec(spec: &str) -> (&str, Option<PathBuf>) {
    match spec.split_once(':') {
        Some((s, p)) if !p.is_empty() => (s, Some(PathBuf::from(p))),
        Some((s, _)) => (s, None),
        None => (spec, None),
    }
}

/// A path as `--json` shows it: `path` as UTF-8 text (lossy where the bytes are not UTF-8) and,
/// only then, `path_bytes`: its bytes in hex (as `ls --json` does). The path itself is kept for text
/// output, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShownPath {
    /// The path as text.
    pub path: String,
    /// The path's bytes in hex, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// The path, exactly.
    #[serde(skip)]
    pub raw: PathBuf,
}

impl ShownPath {
    /// `p` for output.
    pub fn new(p: &Path) -> Self {
        ShownPath {
            path: p.to_string_lossy().into_owned(),
            path_bytes: p.as_os_str().to_str().is_none().then(|| hex::encode(p.as_os_str().as_bytes())),
            raw: p.to_path_buf(),
        }
    }
}
