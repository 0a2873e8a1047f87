//! `cairn key list|add|remove|passwd`: the key files (passwords and generated secrets) of a
//! repository.

use crate::cli::args::KeyCommand;
use crate::cli::output::Text;
use crate::cli::secret_file::{self, SecretFile};
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
    // A secret file that is there already is refused before the password is asked for.
    if let KeyCommand::Add { new_secret_file: Some(f), .. } | KeyCommand::Passwd { new_secret_file: Some(f), .. } = &k {
        secret_file::refuse_existing(f)?;
    }
    // Every subcommand but `list` writes a key file or removes one.
    let repo = open::open(&ctx.g, &ctx.out, !matches!(k, KeyCommand::List))?;
    let out = &ctx.out;
    match k {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            out.result(&keys, Text::Data, |w| {
                writeln!(
                    w,
                    " {:<8}  {:<10}  {:<10}  {:<20}  {:<12}  {:<16}  CERTIFICATE",
                    "ID", "KIND", "CREDENTIAL", "CREATED", "USER", "HOST"
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
                        "{}{:<8}  {:<10}  {:<10}  {:<20}  {:<12}  {:<16}  {}",
                        if k.current { "*" } else { " " },
                        k.id.short(),
                        k.kind_name(),
                        k.credential_name(),
                        k.created.to_rfc3339().chars().take(19).collect::<String>(),
                        k.user,
                        k.host,
                        cert
                    )?;
                }
                Ok(())
            })?;
        }
        KeyCommand::Add { new_password_file, new_secret_file, write_only, hosts } => {
            let (id, secret) = match new_secret_file {
                Some(f) => {
                    // The secret is on disk, synced, before its key file is written.
                    let (id, file) = SecretFile::create_then(
                        &f,
                        |secret| repo.add_secret_for_hosts(secret, write_only, &hosts),
                        |secret| repo.find_secret_key(secret),
                    )?;
                    (id, Some(file))
                }
                None => {
                    let pw = open::new_password(new_password_file.as_deref())?;
                    (repo.add_password_for_hosts(&pw, write_only, &hosts)?, None)
                }
            };
            let certified = repo.keys().can_read();
            out.result(&Added { key_id: id, write_only, hosts: hosts.clone() }, Text::Normal, |w| {
                writeln!(w, "added key {}", id.short())?;
                if let Some(file) = &secret {
                    writeln!(
                        w,
                        "its secret is in {} (mode 0600): keep it like a password file",
                        file.path().display()
                    )?;
                }
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
        KeyCommand::Passwd { new_password_file, new_secret_file: Some(f) } => {
            debug_assert!(new_password_file.is_none(), "clap refuses both");
            let (c, file) = SecretFile::create_then(
                &f,
                |secret| repo.change_to_secret(secret),
                |secret| repo.find_secret_key(secret),
            )?;
            out.result(&c, Text::Normal, |w| {
                writeln!(
                    w,
                    "key {} replaces {}; its secret is in {} (mode 0600): keep it like a password file",
                    c.key_id.short(),
                    c.removed.short(),
                    file.path().display()
                )
            })?;
        }
        KeyCommand::Passwd { new_password_file, new_secret_file: None } => {
            let pw = open::new_password(new_password_file.as_deref())?;
            let c = repo.change_password(&pw)?;
            out.result(&c, Text::Normal, |w| {
                writeln!(w, "password changed: key {} replaces {}", c.key_id.short(), c.removed.short())
            })?;
        }
    }
    Ok(Outcome::Done)
}
