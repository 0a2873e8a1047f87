//! The arguments of `cairn ledger` (kept apart from [`super::args`], which registers
//! [`LedgerCommand`] as a [`super::args::Command`] variant).

use super::values::{time, FixedDuration};
use cairn::ledger::EntryKind;
use cairn::tree::Time;
use clap::Subcommand;

/// A time (as `--time` takes it) or a duration before now (`30d`, `2w`).
fn since(s: &str) -> Result<Time, String> {
    time(s).or_else(|e| match s.parse::<FixedDuration>() {
        Ok(d) => Ok(Time { secs: Time::now().secs.saturating_sub(d.secs), nanos: 0 }),
        Err(_) => Err(format!("{e}, nor a duration such as 30d")),
    })
}

/// An entry kind by name (`backup`, `key-add`, ...).
fn kind(s: &str) -> Result<EntryKind, String> {
    EntryKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = EntryKind::ALL.iter().map(|k| k.name()).collect();
        format!("{s:?} is not an entry kind (one of {})", names.join(", "))
    })
}

/// `cairn ledger`: the repository's audit ledger (format-spec §13).
#[derive(Subcommand)]
pub enum LedgerCommand {
    /// List the entries in order (parents first, then by time); a write-only key sees headers only
    Log {
        /// Only entries written at or after this time (RFC 3339, or YYYY-MM-DD[ HH:MM[:SS]] in UTC), or this long
        /// ago (30d)
        #[arg(long, value_name = "TIME", value_parser = since)]
        since: Option<Time>,
        /// Only entries of this kind (init, key-add, key-remove, key-passwd, backup, forget, prune, check,
        /// repair, copy, drill, rewrite, tag)
        #[arg(long, value_name = "KIND", value_parser = kind)]
        kind: Option<EntryKind>,
    },
    /// Print one line naming the ledger's heads, to keep outside the repository (mail it, store it in a WORM
    /// bucket) and give to `ledger verify --anchor` later
    Head,
    /// Verify the ledger: every entry authenticates, is signed by its key and links; every snapshot is
    /// recorded; every recorded snapshot that is gone was removed by an entry; nothing this client or the
    /// anchor saw is gone. Exit 1 on any finding
    Verify {
        /// A line printed by `cairn ledger head` earlier; its heads must still be in storage
        #[arg(long, value_name = "HEAD")]
        anchor: Option<String>,
        /// A drill's evidence report (its .json file, as written): a verified drill entry must record its
        /// BLAKE3; exit 1 when none does
        #[arg(long, value_name = "FILE")]
        evidence: Option<std::path::PathBuf>,
    },
}
