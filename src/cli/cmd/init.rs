//! `cairn init`: creates a repository (optionally sharing another's chunker keys), its first key
//! opened with a password or with a generated secret (`--new-secret-file`).

use crate::cli::args::InitArgs;
use crate::cli::output::Text;
use crate::cli::secret_file::{self, SecretFile};
use crate::cli::{open, Ctx, Outcome};
use anyhow::bail;
use cairn::id::{KeyId, RepoId};
use cairn::repository::{InitOptions, Repository};

/// `init --json`.
#[derive(serde::Serialize)]
struct Created {
    repository_id: RepoId,
    key_id: KeyId,
}

/// What the first key is opened with.
enum FirstKey<'a> {
    /// A password (asked twice on a terminal).
    Password(zeroize::Zeroizing<Vec<u8>>),
    /// A generated secret, to be written to this new file.
    Secret(&'a std::path::Path),
}

pub fn run(ctx: &Ctx, a: InitArgs) -> anyhow::Result<Outcome> {
    let backend = open::backend(&ctx.g)?;
    if open::has_repository(&backend)? {
        bail!("{}: a repository already exists here", backend.location());
    }
    // No password is asked for (nor read) when the first key is a generated secret; a secret file
    // that is there already is refused before anything else.
    let first = match &a.new_secret_file {
        Some(f) => {
            secret_file::refuse_existing(f)?;
            FirstKey::Secret(f)
        }
        None => {
            let pw = open::password(&ctx.g, true)?;
            if pw.is_empty() {
                bail!("an empty password is not accepted");
            }
            FirstKey::Password(pw)
        }
    };
    let mut init = InitOptions { compression_level: a.compression_level, ..InitOptions::default() };
    if let Some(url) = &a.copy_chunker_from {
        let src = open::open_source(&ctx.g, &ctx.out, url, &a.from)?;
        init.chunker = src.config().chunker();
        init.chunker_keys_from = Some(src.keys().clone());
    }
    let opts = open::open_options(&ctx.g, true);
    let (repo, secret) = match first {
        FirstKey::Password(pw) => (Repository::init(backend, &pw, &init, &opts)?, None),
        FirstKey::Secret(f) => {
            // The secret is on disk, synced, before its key file is written.
            let (repo, file) = SecretFile::create_then(
                f,
                |secret| Repository::init_with_secret(backend.clone(), secret, &init, &opts),
                |secret| cairn::repository::find_secret_key(backend.as_ref(), secret),
            )?;
            (repo, Some(file))
        }
    };
    let doc = Created { repository_id: repo.keys().repo_id, key_id: repo.key_id() };
    ctx.out.result(&doc, Text::Normal, |w| {
        writeln!(w, "created cairn repository {} at {}", doc.repository_id.short(), repo.backend().location())?;
        match &secret {
            Some(file) => writeln!(
                w,
                "Its key is the generated secret in {} (mode 0600): use it as the password file \
                 (--password-file, CAIRN_PASSWORD_FILE). Keep a copy safe elsewhere: without it the data cannot be \
                 read by anyone.",
                file.path().display()
            ),
            None => writeln!(w, "Keep the password safe: without it the data cannot be read by anyone."),
        }
    })?;
    Ok(Outcome::Done)
}
