//! `--new-secret-file FILE` (`init`, `key add`, `key passwd`): a generated 256-bit key secret
//! (format-spec §4.1) in a new private file. The file is written and synced before the key file
//! goes to the repository, so a crash never leaves a key file whose secret is lost; when adding the
//! key fails, the file is removed unless a key file that it opens is in the repository after all.

use anyhow::{anyhow, Context};
use cairn::id::KeyId;
use cairn::keys::{self, KeySecret};
use std::path::{Path, PathBuf};

fn exists(path: &Path) -> anyhow::Error {
    anyhow!(
        "{} already exists; --new-secret-file never overwrites a file: name a new one (or remove it first)",
        path.display()
    )
}

/// Refuses a FILE that exists (a symlink too, dangling or not), before a password is asked for or
/// anything is written. [`SecretFile::create`] refuses one that appears later.
pub fn refuse_existing(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(exists(path)),
        Err(_) => Ok(()),
    }
}

/// A newly generated secret and the file that holds it.
pub struct SecretFile {
    path: PathBuf,
    secret: KeySecret,
}

impl SecretFile {
    /// Generates a secret and writes its text form and a newline to `path`, created with
    /// `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600, then syncs the file and its directory. A
    /// file that is there already is refused and left as it is.
    pub fn create(path: &Path) -> anyhow::Result<SecretFile> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let secret = keys::new_secret();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => exists(path),
                _ => anyhow::Error::new(e).context(format!("cannot create the secret file {}", path.display())),
            })?;
        let written = (|| -> std::io::Result<()> {
            // Exactly 0600, whatever the umask left of it.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            // Two writes: appending the newline to the zeroized text could leave a copy of it behind.
            file.write_all(secret.to_text().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            std::fs::File::open(dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(path);
            return Err(e).with_context(|| format!("cannot write the secret file {}", path.display()));
        }
        Ok(SecretFile { path: path.to_path_buf(), secret })
    }

    /// Creates the file at `path` ([`Self::create`]), then runs `add` with its secret (writing the
    /// key file); when `add` fails, asks `find` which key file opens with the secret and
    /// [`Self::abandon`]s the file accordingly.
    pub fn create_then<T>(
        path: &Path,
        add: impl FnOnce(&KeySecret) -> cairn::Result<T>,
        find: impl FnOnce(&KeySecret) -> cairn::Result<Option<KeyId>>,
    ) -> anyhow::Result<(T, SecretFile)> {
        let file = SecretFile::create(path)?;
        match add(file.secret()) {
            Ok(made) => Ok((made, file)),
            Err(e) => {
                let found = find(file.secret());
                Err(file.abandon(found, e.into()))
            }
        }
    }

    /// The secret.
    pub fn secret(&self) -> &KeySecret {
        &self.secret
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After adding the key failed with `err`: removes the file unless `found` (the repository's
    /// answer to which key file opens with the secret, `find_secret_key`) names one (the write may
    /// have landed, or a later step such as the certificate failed: that key file needs the
    /// secret), and returns `err` saying what became of the file. When `found` is an error (the
    /// storage is unreachable), the file is kept.
    pub fn abandon(self, found: cairn::Result<Option<KeyId>>, err: anyhow::Error) -> anyhow::Error {
        let path = self.path.display();
        let note = match found {
            Ok(None) => match std::fs::remove_file(&self.path) {
                Ok(()) => format!("no key file was written for it; {path} was removed"),
                Err(e) => format!("no key file was written for it; {path} could not be removed ({e}): delete it"),
            },
            Ok(Some(id)) => {
                format!("key file {} was written and opens with the secret in {path}: keep that file", id.short())
            }
            Err(e) => format!("could not tell whether a key file opens with the secret in {path} ({e}); it was kept"),
        };
        err.context(format!("adding the key failed ({note})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn::repository::{InitOptions, OpenOptions, Repository};

    /// A file that is there is refused and left as it is; a new one holds the secret's text, mode 0600.
    #[test]
    fn a_secret_file_is_new_private_and_holds_the_text() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("taken");
        std::fs::write(&taken, b"keep").unwrap();
        assert!(refuse_existing(&taken).is_err());
        assert!(SecretFile::create(&taken).is_err());
        assert_eq!(std::fs::read(&taken).unwrap(), b"keep");
        let path = dir.path().join("new");
        refuse_existing(&path).unwrap();
        let made = SecretFile::create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", *made.secret().to_text()));
        assert_eq!(KeySecret::parse(text.as_bytes()).as_ref(), Some(made.secret()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// After a failure, the file goes only when no key file of the repository opens with it.
    #[test]
    fn abandon_removes_the_file_only_when_no_key_file_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let backend = cairn::backend::open_url("memory://secret-file-abandon").unwrap();
        let opts = OpenOptions { no_cache: true, ..Default::default() };
        let repo = Repository::init(backend, b"pw", &InitOptions::default(), &opts).unwrap();

        let unused = SecretFile::create(&dir.path().join("unused")).unwrap();
        let found = repo.find_secret_key(unused.secret());
        let e = unused.abandon(found, anyhow!("storage said no"));
        assert!(!dir.path().join("unused").exists());
        assert!(format!("{e:#}").contains("no key file was written") && format!("{e:#}").contains("storage said no"));

        let used = SecretFile::create(&dir.path().join("used")).unwrap();
        let id = repo.add_secret_for_hosts(used.secret(), true, &[]).unwrap();
        let found = repo.find_secret_key(used.secret());
        let e = used.abandon(found, anyhow!("the certificate failed"));
        let unknown = SecretFile::create(&dir.path().join("unknown")).unwrap();
        let e2 = unknown.abandon(Err(cairn::Error::RepoNotFound("x".into())), anyhow!("unreachable"));
        assert!(dir.path().join("unknown").exists(), "kept when it cannot be told");
        assert!(format!("{e2:#}").contains("it was kept"), "{e2:#}");
        assert!(dir.path().join("used").exists(), "the key file needs it");
        assert!(format!("{e:#}").contains(&id.short()), "{e:#}");
    }
}
