//! The size of what a backup of some paths will read, for a progress bar's total and ETA. It
//! selects with the backup walk's own rules ([`BackupOptions::excludes_path`],
//! [`BackupOptions::skips_dir`], [`BackupOptions::skips_file`], [`BackupOptions::stays_out`]), so
//! the total counts what the backup reads. Reads metadata only; stores and prints nothing.

use crate::backup::{absolute, BackupOptions};
use crate::fsmeta;
use std::path::{Path, PathBuf};

/// Sums the sizes of the regular files a backup of `paths` with `opts` would read. Calls
/// `progress` with the running total every 1000 entries, and stops early (returning what it has)
/// once `stop` returns true. Entries that cannot be read are left out, as the backup reports them.
pub fn source_bytes(
    paths: &[PathBuf],
    opts: &BackupOptions,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(u64),
) -> u64 {
    let mut roots: Vec<PathBuf> = paths.iter().map(|p| absolute(p).unwrap_or_else(|_| p.clone())).collect();
    roots.sort();
    roots.dedup();
    // A path below another given path is walked once, as part of it.
    let mut selected: Vec<PathBuf> = Vec::new();
    for r in roots {
        if !selected.iter().any(|s| r.starts_with(s)) {
            selected.push(r);
        }
    }
    let mut scan = Scan { opts, stop, progress, total: 0, entries: 0 };
    for root in &selected {
        if root == Path::new("/") {
            let dev = fsmeta::lstat(root).ok().map(|s| s.dev);
            scan.children(root, dev);
        } else {
            let parent_dev = root.parent().and_then(|p| fsmeta::lstat(p).ok()).map(|s| s.dev);
            scan.entry(root, parent_dev);
        }
        if (scan.stop)() {
            break;
        }
    }
    scan.total
}

struct Scan<'a> {
    opts: &'a BackupOptions,
    stop: &'a dyn Fn() -> bool,
    progress: &'a mut dyn FnMut(u64),
    total: u64,
    entries: u64,
}

impl Scan<'_> {
    fn children(&mut self, dir: &Path, dev: Option<u64>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if (self.stop)() {
                return;
            }
            self.entry(&e.path(), dev);
        }
    }

    fn entry(&mut self, path: &Path, parent_dev: Option<u64>) {
        if self.opts.excludes_path(path) {
            return;
        }
        let Ok(st) = fsmeta::lstat(path) else { return };
        self.entries += 1;
        if self.entries.is_multiple_of(1000) {
            (self.progress)(self.total);
        }
        match fsmeta::file_type(st.mode) {
            libc::S_IFDIR if !self.opts.skips_dir(path) && !self.opts.stays_out(parent_dev, st.dev) => {
                self.children(path, Some(st.dev))
            }
            libc::S_IFREG if !self.opts.skips_file(st.size) => self.total += st.size,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Patterns;

    #[test]
    fn counts_what_the_walk_selects() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("keep/sub")).unwrap();
        std::fs::create_dir_all(d.join("tagged")).unwrap();
        std::fs::write(d.join("keep/a"), vec![0; 100]).unwrap();
        std::fs::write(d.join("keep/sub/b"), vec![0; 10]).unwrap();
        std::fs::write(d.join("keep/x.tmp"), vec![0; 1000]).unwrap();
        std::fs::write(d.join("keep/big"), vec![0; 5000]).unwrap();
        std::fs::write(d.join("tagged/.nobackup"), b"").unwrap();
        std::fs::write(d.join("tagged/c"), vec![0; 7]).unwrap();
        let all = source_bytes(&[d.to_path_buf()], &BackupOptions::default(), &|| false, &mut |_| {});
        assert_eq!(all, 100 + 10 + 1000 + 5000 + 7);
        let opts = BackupOptions {
            excludes: Patterns::new([("*.tmp", false)]).unwrap(),
            exclude_if_present: vec![".nobackup".into()],
            exclude_larger_than: Some(4096),
            ..BackupOptions::default()
        };
        let nested = [d.join("keep"), d.join("keep/sub"), d.join("tagged")];
        assert_eq!(source_bytes(&nested, &opts, &|| false, &mut |_| {}), 110);
    }
}
