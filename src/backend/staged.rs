//! Objects written in pieces before their name is known: a pack is named by the hash of its
//! bytes (format-spec §5.3), so a writer appends its blobs to a staged object as they are sealed
//! and stores it under its name once the last byte is written ([`super::Backend::stage`],
//! [`super::Backend::write_staged`]). Staging in a file keeps a pack out of memory.

use super::backend_err;
use crate::error::Result;
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
            Staged::File(f) => f.append(data).map_err(|e| backend_err("write", &f.shown(), e)),
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

    /// Every byte written, read back into memory (for a backend that can only store a buffer).
    pub fn into_bytes(self) -> Result<Vec<u8>> {
        match self {
            Staged::Memory(v) => Ok(v),
            Staged::File(mut f) => {
                let mut v = Vec::with_capacity(f.len as usize);
                let shown = f.shown();
                f.file
                    .rewind()
                    .and_then(|_| (&f.file).read_to_end(&mut v))
                    .map_err(|e| backend_err("read", &shown, e))?;
                Ok(v)
            }
        }
    }
}

/// A temporary file a staged object is appended to: created new (never through an existing name
/// or symbolic link), readable by its owner only, and deleted when dropped unless
/// [`StagedFile::persist`] took it. A crash can leave one behind under its temporary name, which
/// listings skip.
pub struct StagedFile {
    file: File,
    path: Option<PathBuf>,
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
        Ok(StagedFile { file, path: Some(path), len: 0, broken: false })
    }

    fn shown(&self) -> String {
        self.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
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

    /// The open file, to make it durable before it is named.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Gives up ownership of the temporary name (the caller renames or deletes it); the file is no
    /// longer deleted on drop.
    pub fn persist(mut self) -> PathBuf {
        self.path.take().expect("a staged file has its path until persisted")
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
        let p = f.persist();
        assert!(p.exists(), "persisted: kept for the caller");
    }
}
