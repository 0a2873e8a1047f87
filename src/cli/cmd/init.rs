//! `cairn init`: creates a repository (optionally sharing another's chunker keys).

use crate::cli::args::InitArgs;
use crate::cli::output::Text;
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

pub fn run(ctx: &Ctx, a: InitArgs) -> anyhow::Result<Outcome> {
    let backend = open::backend(&ctx.g)?;
    if open::has_repository(&backend)? {
        bail!("{}: a repository already exists here", backend.location());
    }
    let pw = open::password(&ctx.g, true)?;
    if pw.is_empty() {
        bail!("an empty password is not accepted");
    }
    let mut init = InitOptions { compression_level: a.compression_level, ..InitOptions::default() };
    if let Some(url) = &a.copy_chunker_from {
        let src = open::open_source(&ctx.g, &ctx.out, url, &a.from)?;
        init.chunker = src.config().chunker();
        init.chunker_keys_from = Some(src.keys().clone());
    }
    let repo = Repository::init(backend, &pw, &init, &open::open_options(&ctx.g, true))?;
    let doc = Created { repository_id: repo.keys().repo_id, key_id: repo.key_id() };
    ctx.out.result(&doc, Text::Normal, |w| {
        writeln!(w, "created cairn repository {} at {}", doc.repository_id.short(), repo.backend().location())?;
        writeln!(w, "Keep the password safe: without it the data cannot be read by anyone.")
    })?;
    Ok(Outcome::Done)
}
