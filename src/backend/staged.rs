//! Objects written in pieces before their name is known: a pack is named by the hash of its
//! bytes (format-spec §5.3), so a writer appends its blobs to a staged object as they are sealed
//! and stores it under its name once the last byte is written ([`super::Backend::stage`],
//! [`super::Backend::write_staged`]). Staging in a file keeps a pack out of memory: beside the
//! packs on local disk, or, for a remote service, in an unnamed file in a local directory the
//! writer offers (its cache directory).

use super::backend_err;
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The bytes of an object not yet stored.
pub enum Staged {
    /// Held in memory (the default for backends that cannot stage elsewhere).
    Memory(Vec<u8>),
    /// Appended to a private temporary file (see [`StagedFile`]).
    File(StagedFile),
}

/// Where an object is staged when its backend cannot stage beside its objects: a private local
/// directory, or memory.
#[derive(Clone, Copy, Debug)]
pub enum Spill<'a> {
    /// In an unnamed private file in this directory ([`StagedFile::unnamed`]).
    Dir(&'a Path),
    /// In memory.
    Memory,
}

impl Staged {
    /// An empty object held in memory, with room for `capacity` bytes.
    pub fn memory(capacity: usize) -> Self {
        Staged::Memory(Vec::with_capacity(capacity))
    }

    /// Appends `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Staged::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Staged::File(f) => f.append(data).map_err(|e| f.error("write", e)),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        match self {
            Staged::Memory(v) => v.len() as u64,
            Staged::File(f) => f.len,
        }
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty object staged where `spill` says, with room for `capacity` bytes in memory.
    pub fn spill(spill: Spill<'_>, capacity: usize) -> Result<Self> {
        match spill {
            Spill::Dir(dir) => {
                StagedFile::unnamed(dir).map(Staged::File).map_err(|e| Error::io(StagedFile::unnamed_label(dir), e))
            }
            Spill::Memory => Ok(Staged::memory(capacity)),
        }
    }

    /// Every byte written, read back into memory (for a backend that can only store a buffer).
    pub fn into_bytes(self) -> Result<Vec<u8>> {
        match self {
            Staged::Memory(v) => Ok(v),
            Staged::File(mut f) => {
                let mut v = Vec::with_capacity(f.len as usize);
                let read = f.file.rewind().and_then(|_| (&f.file).read_to_end(&mut v));
                read.map_err(|e| f.error("read", e))?;
                Ok(v)
            }
        }
    }
}

/// A temporary file a staged object is appended to: created new (never through an existing name
/// or symbolic link), readable by its owner only, and deleted when dropped unless
/// [`StagedFile::persist`] took it. A crash can leave a named one behind under its temporary
/// name, which listings skip; an unnamed one ([`StagedFile::unnamed`]) leaves nothing.
pub struct StagedFile {
    file: File,
    /// The name to delete on drop; `None` once persisted, or for an unnamed file.
    path: Option<PathBuf>,
    /// What messages call it.
    label: String,
    /// Made in a local directory a writer offered ([`StagedFile::unnamed`]), not in the
    /// repository: its failures are local I/O errors, not storage errors.
    local: bool,
    len: u64,
    /// An append failed and the file could not be cut back to `len`: its bytes no longer match
    /// what its writer recorded, so every later append fails and it is never stored.
    broken: bool,
}

impl StagedFile {
    /// Creates `dir/.tmp-<random>` (the local backend's temporary names, format-spec §1.2).
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(format!(".tmp-{}", hex::encode(&crate::crypto::random_32()[..12])));
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        Ok(StagedFile {
            file,
            label: path.display().to_string(),
            path: Some(path),
            len: 0,
            broken: false,
            local: false,
        })
    }

    /// Creates a file in `dir` that has no name (`O_TMPFILE`), so that nothing is left behind
    /// whatever happens to the process; where the filesystem cannot, a [`StagedFile::create`]d
    /// one whose name is removed at once. Only its open descriptor reaches it.
    pub fn unnamed(dir: &Path) -> std::io::Result<Self> {
        let label = Self::unnamed_label(dir);
        let opened = OpenOptions::new()
            .write(true)
            .read(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir);
        match opened {
            Ok(file) => Ok(StagedFile { file, path: None, label, len: 0, broken: false, local: true }),
            // No O_TMPFILE in this kernel (EISDIR) or filesystem (EOPNOTSUPP).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EISDIR | libc::EOPNOTSUPP | libc::EINVAL)) => {
                Self::named_then_unlinked(dir, label)
            }
            Err(e) => Err(e),
        }
    }

    /// [`StagedFile::unnamed`] without `O_TMPFILE`: created under a random name, which is removed
    /// at once (only a crash in between leaves one, empty, under its `.tmp-` name).
    fn named_then_unlinked(dir: &Path, label: String) -> std::io::Result<Self> {
        let mut f = Self::create(dir)?;
        if let Some(path) = f.path.take() {
            std::fs::remove_file(&path)?;
        }
        f.label = label;
        f.local = true;
        Ok(f)
    }

    /// How messages name an unnamed file in `dir`.
    fn unnamed_label(dir: &Path) -> String {
        format!("{} (a staging file)", dir.display())
    }

    /// `e` from operation `op`, naming this file: a storage error for a file in the repository,
    /// a local I/O error for one in a directory a writer offered.
    pub(crate) fn error(&self, op: &'static str, e: std::io::Error) -> Error {
        if self.local {
            Error::io(&self.label, e)
        } else {
            backend_err(op, &self.label, e)
        }
    }

    /// Appends `data`, all of it or nothing: a failed write (a full disk stops `write_all` part
    /// way) is cut back to the last whole append, so the pack's header, which records offsets
    /// from what was appended, still describes the file. When that cut fails too, the file is
    /// broken and refuses every later append.
    pub fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.broken {
            return Err(std::io::Error::other("an earlier append failed and could not be undone"));
        }
        if let Err(e) = self.file.write_all(data) {
            let undone = self.file.set_len(self.len).and_then(|_| self.file.seek(std::io::SeekFrom::Start(self.len)));
            self.broken = undone.is_err();
            return Err(e);
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Bytes appended so far: what is stored (a failed append counts nothing).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The open file, to make it durable before it is named, or to read it back.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// True when the file has a name (made by [`StagedFile::create`], not yet persisted).
    pub fn is_named(&self) -> bool {
        self.path.is_some()
    }

    /// Gives up ownership of the temporary name (the caller renames or deletes it); the file is no
    /// longer deleted on drop. `None` for a file without a name ([`StagedFile::is_named`]).
    pub fn persist(mut self) -> Option<PathBuf> {
        self.path.take()
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_append_that_cannot_be_undone_breaks_the_file_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StagedFile::create(dir.path()).unwrap();
        f.append(b"first blob").unwrap();
        // Writes to /dev/full fail with ENOSPC, and it cannot be truncated: the undo fails.
        f.file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        assert!(f.append(b"second blob").is_err());
        assert_eq!(f.len, 10, "a failed append counts nothing");
        assert!(f.broken);
        let e = f.append(b"third").unwrap_err();
        assert!(e.to_string().contains("could not be undone"), "{e}");
    }

    #[test]
    fn an_unnamed_staging_file_leaves_no_name_with_or_without_o_tmpfile() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let made = [
            StagedFile::unnamed(dir.path()).unwrap(),
            StagedFile::named_then_unlinked(dir.path(), "x".into()).unwrap(),
        ];
        for f in made {
            assert!(!f.is_named());
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no name in the directory");
            assert_eq!(f.file().metadata().unwrap().mode() & 0o777, 0o600);
            assert_eq!(f.file().metadata().unwrap().nlink(), 0, "no link to it anywhere");
            let mut s = Staged::File(f);
            s.write(b"pack ").unwrap();
            s.write(b"bytes").unwrap();
            assert_eq!(s.into_bytes().unwrap(), b"pack bytes");
        }
        // A full disk under the cache directory is a local I/O error that names the file, not a storage error.
        let mut f = StagedFile::unnamed(dir.path()).unwrap();
        f.file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let e = Staged::File(f).write(b"blob").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Io, "{e}");
        assert!(e.to_string().contains("(a staging file)"), "{e}");
    }

    /// Another local user who could swap the offered directory for a symbolic link (to a place of
    /// theirs, or to one they want written) gets nothing: the link is not followed.
    #[test]
    fn an_unnamed_staging_file_is_not_made_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = dir.path().join("cache");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let e = StagedFile::unnamed(&link).err().expect("a symbolic link is refused");
        // `O_NOFOLLOW` with `O_TMPFILE` (which implies `O_DIRECTORY`): ENOTDIR, or ELOOP on some kernels.
        assert!(matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing is made where the link points");
        let e = Staged::spill(Spill::Dir(&link), 0).err().expect("refused through the writer's path too");
        assert_eq!(e.kind(), crate::error::ErrorKind::Io, "{e}");
    }

    #[test]
    fn a_staged_file_is_private_new_and_removed_unless_persisted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut s = Staged::File(StagedFile::create(dir.path()).unwrap());
        s.write(b"abc").unwrap();
        s.write(b"def").unwrap();
        assert_eq!(s.len(), 6);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].file_name().unwrap().to_str().unwrap().starts_with(".tmp-"));
        assert_eq!(std::fs::metadata(&names[0]).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(s.into_bytes().unwrap(), b"abcdef");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "dropped without persist: deleted");
        let Staged::File(f) = Staged::File(StagedFile::create(dir.path()).unwrap()) else { unreachable!() };
        let p = f.persist().unwrap();
        assert!(p.exists(), "persisted: kept for the caller");
    }
}
