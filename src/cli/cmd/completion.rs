//! `cairn completion SHELL` and the hidden `cairn man --dir DIR`: shell completions and man pages,
//! generated from the one clap definition so they cannot drift from the flags.

use crate::cli::args::{Cli, CompletionArgs, ManArgs};
use crate::cli::Outcome;
use anyhow::Context;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

pub fn completion(a: CompletionArgs) -> anyhow::Result<Outcome> {
    let mut cmd = Cli::command();
    // Rendered into memory first: clap_complete panics on a failed write, and a closed stdout
    // (`cairn completion bash | head -1`) must be an error, not a panic.
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "cairn", &mut buf);
    let mut out = std::io::stdout().lock();
    out.write_all(&buf).and_then(|()| out.flush()).context("cannot write the completion script to stdout")?;
    Ok(Outcome::Done)
}

/// Writes `cairn.1` and a page per command (`cairn-backup.1`, `cairn-key-add.1`, ...), skipping
/// hidden commands.
pub fn man(a: ManArgs) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("cannot create {}", a.dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    write_pages(&cmd, "cairn", &a.dir)?;
    Ok(Outcome::Done)
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    let page = cmd.clone().display_name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
