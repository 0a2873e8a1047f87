//! Grows a repository to N small data blobs through cairn's own writer, for `benches/scale.sh`
//! (see the scale section of `benches/README.md`). Not a criterion benchmark: it is a
//! `harness = false` bench target so that `cargo test` never builds it.
//!
//! Shape, deterministic from the seed: blob `i` is 64–200 pseudo-random bytes (incompressible)
//! that depend only on `(seed, i)`; each file holds one blob; directories hold
//! [`FILES_PER_DIR`] files; each snapshot adds one batch directory `/b<NNNNN>` of up to
//! [`BLOBS_PER_SNAPSHOT`] new blobs and keeps every earlier batch directory (their trees
//! dedup), as a growing tree backed up again and again would. Growing is resumable: the state
//! (blob count, batch trees) is kept in `<work>/grow.state`, so 10 k, 1 M and 10 M are one
//! repository grown step by step.
//!
//! Run: `cargo bench --bench scale -- --repo DIR --cache DIR --state FILE --blobs N [--seed S]`;
//! `-- --random-file FILE --bytes N --seed S` writes the incremental backup's input instead.
//! The password is `CAIRN_PASSWORD` (default `cairn scale`). Without `--repo` it prints its
//! usage and exits 0 (so `cargo test --all-targets` runs it harmlessly).

use cairn::backend::open_url;
use cairn::id::{BlobId, BlobKind};
use cairn::repository::{InitOptions, OpenOptions, Repository};
use cairn::snapshot::{Snapshot, SnapshotV3, SourceRecord, Summary};
use cairn::time::Time;
use cairn::tree::{Content, Node, NodeKind};
use cairn::trees::write_dir;
use cairn::writer::{Writer, WriterOptions};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Files (one blob each) per directory.
const FILES_PER_DIR: u64 = 1000;
/// New blobs per snapshot (one writing session each).
const BLOBS_PER_SNAPSHOT: u64 = 100_000;

/// xorshift64*: fast and deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The plaintext of blob `i`: 64–200 bytes depending only on `(seed, i)`.
fn blob(seed: u64, i: u64) -> Vec<u8> {
    let mut r = Rng::new(seed ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let len = 64 + (r.next() % 137) as usize;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&r.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What has been grown so far.
struct State {
    seed: u64,
    blobs: u64,
    /// Batch directories of the root: name and tree.
    batches: Vec<(String, BlobId)>,
}

impl State {
    fn load(path: &PathBuf, seed: u64) -> State {
        let Ok(text) = std::fs::read_to_string(path) else { return State { seed, blobs: 0, batches: Vec::new() } };
        let mut lines = text.lines();
        let head: Vec<u64> =
            lines.next().unwrap_or("").split_whitespace().map(|w| w.parse().expect("state: a number")).collect();
        assert_eq!(head.len(), 2, "state: first line is `seed blobs`");
        assert_eq!(head[0], seed, "state: grown with another seed");
        let batches = lines
            .map(|l| {
                let (name, hex) = l.split_once(' ').expect("state: `name tree`");
                (name.to_string(), BlobId::from_hex(hex).expect("state: a tree id"))
            })
            .collect();
        State { seed, blobs: head[1], batches }
    }

    fn save(&self, path: &PathBuf) {
        let mut s = format!("{} {}\n", self.seed, self.blobs);
        for (name, id) in &self.batches {
            s.push_str(&format!("{name} {}\n", id.to_hex()));
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, s).expect("write the state");
        std::fs::rename(&tmp, path).expect("replace the state");
    }
}

fn file_node(name: String, id: BlobId, size: u64) -> Node {
    let mut n = Node::bare(name.as_bytes(), NodeKind::File { content: Content::Chunks(vec![id]) });
    n.size = size;
    n
}

fn dir_node(name: &str, tree: BlobId) -> Node {
    let mut n = Node::bare(name.as_bytes(), NodeKind::Dir { tree });
    n.mode = 0o755;
    n
}

/// Stores blobs `from..to` as directories of one new batch; returns the batch's tree.
fn write_batch(w: &Writer<'_>, seed: u64, from: u64, to: u64) -> BlobId {
    let starts: Vec<u64> = (from..to).step_by(FILES_PER_DIR as usize).collect();
    let dirs: Vec<Node> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + FILES_PER_DIR).min(to);
            let files: Vec<Node> = (start..end)
                .map(|i| {
                    let plain = blob(seed, i);
                    let (id, _) = w.store(BlobKind::Data, &plain).expect("store a blob");
                    file_node(format!("f{i:08}"), id, plain.len() as u64)
                })
                .collect();
            dir_node(&format!("d{start:08}"), write_dir(w, files).expect("store a directory"))
        })
        .collect();
    write_dir(w, dirs).expect("store the batch directory")
}

/// Writes `bytes` incompressible pseudo-random bytes from `seed` to `path` (the input of the
/// incremental backup: new data each time with a new seed).
fn write_random(path: &str, bytes: u64, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create the file"));
    let mut r = Rng::new(seed ^ 0x5CA1_E000);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for c in buf.chunks_exact_mut(8) {
            c.copy_from_slice(&r.next().to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).expect("write the file");
        left -= n as u64;
    }
    f.flush().expect("write the file");
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(file) = arg(&args, "--random-file") {
        let bytes: u64 = arg(&args, "--bytes").expect("--bytes N").parse().expect("--bytes: a number");
        let seed: u64 = arg(&args, "--seed").map_or(1, |s| s.parse().expect("--seed: a number"));
        write_random(&file, bytes, seed);
        return;
    }
    let Some(repo_dir) = arg(&args, "--repo") else {
        eprintln!("usage: scale --repo DIR --cache DIR --state FILE --blobs N [--seed S] (see benches/README.md)");
        return;
    };
    let cache = PathBuf::from(arg(&args, "--cache").expect("--cache DIR"));
    let state_path = PathBuf::from(arg(&args, "--state").expect("--state FILE"));
    let target: u64 = arg(&args, "--blobs").expect("--blobs N").parse().expect("--blobs: a number");
    let seed: u64 = arg(&args, "--seed").map_or(1, |s| s.parse().expect("--seed: a number"));
    let password = std::env::var("CAIRN_PASSWORD").unwrap_or_else(|_| "cairn scale".into());

    let opts = OpenOptions { cache_root: Some(cache), no_cache: false, upgrade_config: false };
    let backend = open_url(&repo_dir).expect("open the repository path");
    let repo = if std::path::Path::new(&repo_dir).join("config").exists() {
        Repository::open(backend, password.as_bytes(), &opts).expect("open the repository")
    } else {
        Repository::init(backend, password.as_bytes(), &InitOptions::default(), &opts).expect("init the repository")
    };
    let mut state = State::load(&state_path, seed);
    let started = Instant::now();
    let first = state.blobs;
    while state.blobs < target {
        let t = Instant::now();
        let from = state.blobs;
        let to = (from + BLOBS_PER_SNAPSHOT).min(target);
        let w = Writer::new(&repo, WriterOptions::default(), "backup").expect("start a session");
        let batch = write_batch(&w, seed, from, to);
        let name = format!("b{:05}", state.batches.len());
        let mut batches = state.batches.clone();
        batches.push((name, batch));
        let root = write_dir(&w, batches.iter().map(|(n, t)| dir_node(n, *t)).collect()).expect("store the root");
        let st = w.stats();
        let summary = Summary {
            blobs_added: st.blobs_added.load(Ordering::Relaxed),
            bytes_added: st.bytes_added.load(Ordering::Relaxed),
            bytes_added_stored: st.bytes_added_stored.load(Ordering::Relaxed),
            ..Summary::default()
        };
        let snap = Snapshot::V3(SnapshotV3 {
            time: Time::now(),
            host: "scale".into(),
            user: "scale".into(),
            uid: 0,
            gid: 0,
            paths: vec![b"/".to_vec()],
            tags: vec!["scale".into()],
            root,
            parent: None,
            sources: vec![SourceRecord::Paths { path: b"/".to_vec() }],
            summary,
            program: format!("cairn {} benches/scale.rs", env!("CARGO_PKG_VERSION")),
            replaces: Vec::new(),
            origin: None,
            writer: None,
        });
        w.commit(&snap).expect("commit the snapshot");
        state.batches = batches;
        state.blobs = to;
        state.save(&state_path);
        let s = t.elapsed().as_secs_f64();
        eprintln!("scale: {to} blobs ({} new in {s:.1} s, {:.0}/s)", to - from, (to - from) as f64 / s);
    }
    let s = started.elapsed().as_secs_f64();
    eprintln!("scale: grew {first} -> {} blobs in {s:.1} s", state.blobs);
}
