//! `cairn serve`: the REST API server and its tokens (docs/api.md); the server itself is
//! `cli/serve/`.

use crate::cli::args_serve::ServeArgs;
use crate::cli::{Ctx, Outcome};

pub fn run(ctx: &Ctx, a: ServeArgs) -> anyhow::Result<Outcome> {
    crate::cli::serve::run(ctx, a)
}
