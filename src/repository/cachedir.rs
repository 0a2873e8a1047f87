//! The cache directory itself: where it is by default, and that only this user can read or
//! change it (README "Security model"): directories 0700 owned by this user, files 0600, never
//! through a symlink.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The default cache root: `$XDG_CACHE_HOME/cairn`, else `$HOME/.cache/cairn`, else
/// `.cache/cairn` in the home directory the user database gives the effective user, when that
/// directory exists. `None` when there is none: cairn then runs without a cache rather than in a
/// directory shared with other users.
pub fn default_root() -> Option<PathBuf> {
    root_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"), || {
        // SAFETY: a plain getter.
        let home = crate::repository::identity::home_dir(unsafe { libc::geteuid() })?;
        Some(PathBuf::from(home)).filter(|h| h.is_dir())
    })
}

/// [`default_root`] from the two variables and the user database's home directory.
fn root_from(
    xdg: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
    user_home: impl FnOnce() -> Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(x) = xdg.filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("cairn"));
    }
    let home = home.filter(|h| !h.is_empty()).map(PathBuf::from).or_else(user_home)?;
    Some(home.join(".cache").join("cairn"))
}

/// Creates `dir` (with any missing parents) mode 0700 when it is missing, then checks that only
/// this user can change it: a directory, owned by the effective user, not writable by group or
/// others; else the open is refused, naming the path and `--cache-dir`. A directory an older
/// cairn made readable by others is narrowed to 0700. `follow` allows a symlink (the root the
/// user named; the directory it points to is checked); the components cairn creates below the
/// root must be real directories.
pub(crate) fn private_dir(dir: &Path, follow: bool) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io(dir, e))?;
    let m = if follow { std::fs::metadata(dir) } else { std::fs::symlink_metadata(dir) };
    let m = m.map_err(|e| Error::io(dir, e))?;
    // SAFETY: a plain getter.
    let euid = unsafe { libc::geteuid() };
    let problem = if !m.is_dir() {
        Some("is not a directory".to_string())
    } else if m.uid() != euid {
        Some(format!("is owned by uid {}, not by this user (uid {euid})", m.uid()))
    } else if m.mode() & 0o022 != 0 {
        Some(format!("is writable by group or others (mode {:04o})", m.mode() & 0o7777))
    } else {
        None
    };
    if let Some(p) = problem {
        return Err(Error::refused(format!(
            "cache directory {} {p}: another user could read or replace the cache; fix it or choose another \
             with --cache-dir",
            dir.display()
        )));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes `data` to `path` as a file only this user can read (0600, also when it existed),
/// never through a symlink.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_default_root_never_falls_back_to_a_shared_directory() {
        let some = |s: &str| Some(OsString::from(s));
        let none = || None;
        assert_eq!(root_from(some("/x"), some("/h"), none), Some(PathBuf::from("/x/cairn")));
        assert_eq!(root_from(some(""), some("/h"), none), Some(PathBuf::from("/h/.cache/cairn")));
        assert_eq!(root_from(None, None, || Some("/pw".into())), Some(PathBuf::from("/pw/.cache/cairn")));
        assert_eq!(root_from(None, some(""), none), None);
        assert_eq!(root_from(None, None, none), None);
    }

    #[test]
    fn cache_directories_are_private_and_foreign_ones_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let root = tmp.path().join("a/b");
        private_dir(&root, true).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&root)), (0o700, 0o700));
        // Made readable by an older cairn: narrowed.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&root, true).unwrap();
        assert_eq!(mode(&root), 0o700);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&root, true).unwrap_err().to_string();
        assert!(e.contains(&root.display().to_string()) && e.contains("--cache-dir"), "{e}");
        // A symlink where cairn creates a component is refused.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&root, tmp.path().join("link")).unwrap();
        assert!(private_dir(&tmp.path().join("link"), false).is_err());
        assert!(private_dir(&tmp.path().join("link"), true).is_ok());
        let f = tmp.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        write_private(&f, b"y").unwrap();
        assert_eq!((mode(&f), std::fs::read(&f).unwrap()), (0o600, b"y".to_vec()));
    }
}
