//! `cairn mount`: the snapshots as a read-only FUSE filesystem.

use crate::cli::args::MountArgs;
use crate::cli::{Ctx, Outcome};

pub fn run(_ctx: &Ctx, _a: MountArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("not yet")
}
