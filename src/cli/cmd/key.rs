//! `cairn key list|add|remove|passwd`: the key files (passwords) of a repository.

use crate::cli::args::KeyCommand;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use cairn::id::KeyId;

/// `key add --json`.
#[derive(serde::Serialize)]
struct Added {
    key_id: KeyId,
    write_only: bool,
    hosts: Vec<String>,
}

/// `key remove --json`.
#[derive(serde::Serialize)]
struct Removed {
    removed: KeyId,
}

pub fn run(ctx: &Ctx, k: KeyCommand) -> anyhow::Result<Outcome> {
    // Every subcommand but `list` writes a key file or removes one.
    let repo = open::open(&ctx.g, &ctx.out, !matches!(k, KeyCommand::List))?;
    let out = &ctx.out;
    match k {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            out.result(&keys, Text::Data, |w| {
                writeln!(
                    w,
                    " {:<8}  {:<10}  {:<20}  {:<12}  {:<16}  CERTIFICATE",
                    "ID", "KIND", "CREATED", "USER", "HOST"
                )?;
                for k in &keys {
                    let mut cert = if k.hosts.is_empty() {
                        k.certificate.to_string()
                    } else {
                        format!("{} (hosts {})", k.certificate, k.hosts.join(","))
                    };
                    if let Some(t) = k.revoked {
                        let file = if k.key_file { "" } else { ", key file removed" };
                        cert.push_str(&format!(
                            "; REVOKED {}{file}",
                            t.to_rfc3339().chars().take(19).collect::<String>()
                        ));
                    }
                    writeln!(
                        w,
                        "{}{:<8}  {:<10}  {:<20}  {:<12}  {:<16}  {}",
                        if k.current { "*" } else { " " },
                        k.id.short(),
                        k.kind_name(),
                        k.created.to_rfc3339().chars().take(19).collect::<String>(),
                        k.user,
                        k.host,
                        cert
                    )?;
                }
                Ok(())
            })?;
        }
        KeyCommand::Add { new_password_file, write_only, hosts } => {
            let pw = open::new_password(new_password_file.as_deref())?;
            let id = repo.add_password_for_hosts(&pw, write_only, &hosts)?;
            let certified = repo.keys().can_read();
            out.result(&Added { key_id: id, write_only, hosts: hosts.clone() }, Text::Normal, |w| {
                writeln!(w, "added key {}", id.short())?;
                if !hosts.is_empty() {
                    writeln!(w, "it may write snapshots only for host(s) {}", hosts.join(", "))?;
                }
                if !certified {
                    writeln!(w, "note: a write-only key cannot certify it; its snapshots will be unattributed")?;
                }
                Ok(())
            })?;
        }
        KeyCommand::Remove { id } => {
            let id = repo.resolve_key(&id.0)?;
            repo.remove_key(&id, false)?;
            out.result(&Removed { removed: id }, Text::Normal, |w| {
                writeln!(w, "revoked and removed key {}", id.short())
            })?;
        }
        KeyCommand::Passwd { new_password_file } => {
            let pw = open::new_password(new_password_file.as_deref())?;
            let c = repo.change_password(&pw)?;
            out.result(&c, Text::Normal, |w| {
                writeln!(w, "password changed: key {} replaces {}", c.key_id.short(), c.removed.short())
            })?;
        }
    }
    Ok(Outcome::Done)
}
