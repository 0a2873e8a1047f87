//! The arguments of `cairn serve` (docs/api.md), kept apart from [`super::args`], which registers
//! them as a [`super::args::Command`] variant.

use clap::{Args, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `cairn serve`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = "Serves the REST API of docs/api.md (and the web page at /) for one repository, opened \
once with the password from the usual sources; the password never crosses the API. A non-loopback --listen \
needs --tls-cert/--tls-key or --insecure-http (exit 2 otherwise). Prints `listening on http(s)://ADDR` on \
stderr when ready; stops on SIGINT/SIGTERM, cancelling running jobs.")]
pub struct ServeArgs {
    /// `token new` (and the hidden `routes`).
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Address and port to listen on (port 0: any free port, printed when ready)
    #[arg(long, default_value = "127.0.0.1:8920", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// File of API tokens (`cairn serve token new`); repeatable. Must not be readable by group or others
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_files: Vec<PathBuf>,
    /// TLS certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (tokens then cross the network in clear)
    #[arg(long)]
    pub insecure_http: bool,
    /// Failed token attempts allowed per client address per minute before it gets 429
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_auth_failures: u32,
    /// Listings (and the other JSON reads) run at once, and as many download blobs besides; more
    /// wait their turn [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: Option<u32>,
}

/// `cairn serve token ...` and the hidden route listing.
#[derive(Subcommand)]
pub enum ServeCommand {
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the API's route table as JSON (method, path, role): what the OpenAPI document must list
    #[command(hide = true)]
    Routes,
}

/// `cairn serve token ...`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token, append its hash to the token file (created 0600) and print the token once
    New {
        /// What the token may do: read (list, download), operate (also start backups, checks, drills), admin (also
        /// forget, prune, keys)
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A name for the token (letters, digits, `.`, `_`, `-`), shown in the server's log
        #[arg(long)]
        name: String,
        /// The token file to append to
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
    },
}

/// A token's role on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    /// List and download.
    Read,
    /// Also start backups, checks and drills.
    Operate,
    /// Also forget, prune and list keys.
    Admin,
}
