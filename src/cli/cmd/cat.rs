//! `cairn cat KIND ID`: one repository object as JSON (a data blob as raw bytes without `--json`).

use crate::cli::args::CatCommand;
use crate::cli::output::{SourceView, Text};
use crate::cli::{open, Ctx, Outcome};
use cairn::config::Config;
use cairn::id::{BlobId, BlobKind, SnapshotId};
use cairn::select::{self, Filter};
use cairn::snapshot::Snapshot;
use serde::Serialize;

/// `cat config`.
#[derive(Serialize)]
struct ConfigDoc<'a> {
    number: u64,
    config: &'a Config,
}

/// `cat snapshot`.
#[derive(Serialize)]
struct SnapshotDoc {
    id: SnapshotId,
    snapshot: Snapshot,
    /// The sources as text (format-spec §8.1): also for a version 1 or 2 snapshot.
    sources: Vec<SourceView>,
}

/// `cat blob --json`.
#[derive(Serialize)]
struct BlobDoc {
    id: BlobId,
    length: usize,
    hex: String,
}

/// Prints `doc` as JSON (with or without `--json`: these are dumps).
fn dump<T: Serialize>(ctx: &Ctx, doc: &T) -> anyhow::Result<Outcome> {
    ctx.out.result(doc, Text::Data, |w| {
        serde_json::to_writer_pretty(&mut *w, doc)?;
        writeln!(w)
    })?;
    Ok(Outcome::Done)
}

pub fn run(ctx: &Ctx, c: CatCommand) -> anyhow::Result<Outcome> {
    // The config and key files are readable with any key, write-only ones included.
    let reader = || open::open_reader(&ctx.g, &ctx.out);
    match c {
        CatCommand::Config => {
            let repo = open::open(&ctx.g, &ctx.out, false)?;
            dump(ctx, &ConfigDoc { number: repo.config_number(), config: repo.config() })
        }
        CatCommand::Key { id } => {
            let repo = open::open(&ctx.g, &ctx.out, false)?;
            let id = repo.resolve_key(&id.0)?;
            dump(ctx, &repo.key_file_info(&id)?)
        }
        CatCommand::Snapshot { id } => {
            let (id, snapshot) = select::select(&reader()?, &id, &Filter::default())?;
            dump(ctx, &SnapshotDoc { id, sources: SourceView::of(&snapshot), snapshot })
        }
        CatCommand::Tree { id } => dump(ctx, &reader()?.read_tree_blob(&id)?),
        CatCommand::Index { id } => dump(ctx, &reader()?.read_index(&id)?),
        CatCommand::Blob { id } => {
            let data = reader()?.read_blob(BlobKind::Data, &id)?;
            if ctx.out.json() {
                dump(ctx, &BlobDoc { id, length: data.len(), hex: hex::encode(&data) })
            } else {
                ctx.out.bytes(&data)?;
                Ok(Outcome::Done)
            }
        }
    }
}
