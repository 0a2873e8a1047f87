//! `cairn tag`: changes the tags of snapshots by rewriting their manifests.

use crate::cli::args::TagArgs;
use crate::cli::{Ctx, Outcome};

pub fn run(_ctx: &Ctx, _a: TagArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("not yet")
}
