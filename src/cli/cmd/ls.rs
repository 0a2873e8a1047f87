//! `cairn ls`: the paths of a snapshot (or of a subtree), one per line or as JSON.

use crate::cli::args::LsArgs;
use crate::cli::output::{short_time, Text};
use crate::cli::{open, Ctx, Outcome};
use cairn::select;
use cairn::tree::{Node, NodeKind, Time};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One entry of `ls --json`.
#[derive(serde::Serialize)]
pub(crate) struct Entry<'a> {
    path: String,
    /// The path's bytes in hex, when they are not UTF-8 (`path` is then a lossy rendering).
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    user: &'a str,
    group: &'a str,
    mtime: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

impl<'a> Entry<'a> {
    pub(crate) fn new(p: &Path, n: &'a Node) -> Self {
        Entry {
            path: p.to_string_lossy().into_owned(),
            path_bytes: p.as_os_str().to_str().is_none().then(|| hex::encode(p.as_os_str().as_bytes())),
            kind: n.type_name(),
            size: n.size,
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            user: &n.user,
            group: &n.group,
            mtime: n.mtime,
            target: match &n.kind {
                NodeKind::Symlink { target } => Some(String::from_utf8_lossy(target).into_owned()),
                _ => None,
            },
        }
    }
}

/// `ls -l`'s line for one entry, as bytes (the path need not be UTF-8).
fn long_line(p: &Path, n: &Node) -> Vec<u8> {
    let owner = if n.user.is_empty() { n.uid.to_string() } else { n.user.clone() };
    let group = if n.group.is_empty() { n.gid.to_string() } else { n.group.clone() };
    let mut bytes =
        format!("{} {:>8} {:>8} {:>12} {} ", n.mode_string(), owner, group, n.size, short_time(&n.mtime)).into_bytes();
    bytes.extend_from_slice(p.as_os_str().as_bytes());
    if let NodeKind::Symlink { target } = &n.kind {
        bytes.extend_from_slice(b" -> ");
        bytes.extend_from_slice(target);
    }
    bytes.push(b'\n');
    bytes
}

pub fn run(ctx: &Ctx, a: LsArgs) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let (_, snap) = select::select(&repo, &a.snapshot.spec, &a.filter.filter())?;
    let sub = a.snapshot.path.clone();
    let mut entries: Vec<(PathBuf, Node)> = Vec::new();
    // The directory to list below, if any: the root, or SNAPSHOT:PATH when it is a directory.
    let mut start = Some(snap.root());
    if let Some(p) = &sub {
        if let Some(n) = cairn::browse::find(&repo, &snap.root(), p)? {
            start = match n.kind {
                NodeKind::Dir { tree } => Some(tree),
                _ => None,
            };
            entries.push((p.clone(), n));
        }
    }
    if let Some(tree) = start {
        let base = sub.unwrap_or_else(|| PathBuf::from("/"));
        cairn::browse::walk(&repo, &tree, &base, &crate::cli::values::tree_limits(a.max_tree_memory), &mut |p, n| {
            entries.push((p.to_path_buf(), n.clone()));
            Ok(true)
        })?;
    }
    let doc: Vec<Entry> = if ctx.out.json() { entries.iter().map(|(p, n)| Entry::new(p, n)).collect() } else { vec![] };
    ctx.out.result(&doc, Text::Data, |w| {
        for (p, n) in &entries {
            if a.long {
                w.write_all(&long_line(p, n))?;
            } else {
                w.write_all(p.as_os_str().as_bytes())?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    })?;
    Ok(Outcome::Done)
}
