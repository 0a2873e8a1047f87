//! `cairn dump`: one file of a snapshot to standard output.

use crate::cli::args::DumpArgs;
use crate::cli::{open, Ctx, Outcome};
use anyhow::Context;
use cairn::restore;
use cairn::select;
use std::io::Write;
use std::path::Path;

pub fn run(ctx: &Ctx, a: DumpArgs) -> anyhow::Result<Outcome> {
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let (_, snap) = select::select(&repo, &a.snapshot, &a.filter.filter())?;
    let path = if a.path.is_absolute() { a.path.clone() } else { Path::new("/").join(&a.path) };
    // The file's bytes are the command's data: straight to stdout, in large writes.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    restore::dump(&repo, &snap.root(), &path, &mut out)?;
    out.flush().context("writing to standard output")?;
    Ok(Outcome::Done)
}
