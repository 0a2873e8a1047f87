//! What a backup reads: the source paths (made absolute, and the tree of them the walker
//! descends), or one stream (standard input or a command's output) stored as one file.

use super::walk::{build_trie, Ctx};
use super::{BackupSource, FileMsg};
use crate::error::{Error, Result};
use crate::fsmeta;
use crate::snapshot::Source;
use std::path::{Path, PathBuf};

/// The absolute paths a backup of `source` covers, and what its snapshot records as the source.
pub(super) fn resolve(source: &BackupSource) -> Result<(Vec<PathBuf>, Source)> {
    Ok(match source {
        BackupSource::Paths(p) => {
            if p.is_empty() {
                return Err(Error::Usage("nothing to back up: give at least one path".into()));
            }
            let mut abs = p.iter().map(|x| absolute(x)).collect::<Result<Vec<_>>>()?;
            abs.sort();
            abs.dedup();
            (abs, Source::Files)
        }
        BackupSource::Stream { name, .. } => {
            check_stream_name(name)?;
            (vec![PathBuf::from("/").join(name)], Source::Stdin { name: name.clone() })
        }
        BackupSource::Command { name, command } => {
            check_stream_name(name)?;
            (
                vec![PathBuf::from("/").join(name)],
                Source::Command { command: command.clone(), name: name.clone(), exit_status: 0 },
            )
        }
    })
}

/// Walks what `source` names, feeding the pipeline through `ctx`; for a command, its exit
/// status or the error that kept it from running.
pub(super) fn walk_source(
    ctx: &Ctx,
    source: BackupSource,
    paths: &[PathBuf],
) -> (Option<std::process::ExitStatus>, Option<Error>) {
    let mut command_status = None;
    let mut command_error = None;
    match source {
        BackupSource::Paths(_) => {
            let trie = build_trie(paths);
            let root = Path::new("/");
            match fsmeta::open_dir_for_read(None, root.as_os_str(), true) {
                Err(e) => ctx.error(root, format!("cannot open: {e}")),
                Ok(handle) if trie.selected => {
                    // "/" itself was given: walk its entries.
                    if let Ok(st) = fsmeta::fstat(&handle) {
                        ctx.children(&handle, root, st.dev);
                    }
                }
                Ok(handle) => {
                    ctx.virtual_dir(&handle, root, &trie.children);
                }
            }
        }
        BackupSource::Stream { name, reader } => {
            if let Some(mtx) = ctx.begin_stream(&name) {
                let (size, error) = ctx.read_chunks(reader, None, &mtx);
                let _ = mtx.send(FileMsg::Done { size, error });
            }
        }
        BackupSource::Command { name, command } => {
            let child = std::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .spawn();
            match child {
                Err(e) => {
                    command_error =
                        Some(Error::CommandFailed { command: command.clone(), status: format!("cannot start: {e}") })
                }
                Ok(mut child) => {
                    let out = child.stdout.take().expect("piped stdout");
                    if let Some(mtx) = ctx.begin_stream(&name) {
                        let (size, error) = ctx.read_chunks(out, None, &mtx);
                        match child.wait() {
                            Ok(st) => command_status = Some(st),
                            Err(e) => {
                                command_error =
                                    Some(Error::CommandFailed { command: command.clone(), status: e.to_string() })
                            }
                        }
                        let _ = mtx.send(FileMsg::Done { size, error });
                    } else {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                }
            }
        }
    }
    (command_status, command_error)
}

pub(super) fn check_stream_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        return Err(Error::Usage(format!("stream file name {name:?} must be a plain file name")));
    }
    Ok(())
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
