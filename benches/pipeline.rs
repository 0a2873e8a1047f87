//! Criterion benchmarks of cairn's data path (format-spec §3, §5): each CPU stage on its own
//! (chunking, keyed BLAKE3 ids, zstd, blob sealing, the AEAD), then whole backups and a restore
//! of a generated tree on local disk. See `benches/README.md` for what each one measures.
//!
//! Inputs are deterministic: xorshift pseudo-random bytes (incompressible) and text-like bytes
//! built from a skewed pseudo-word vocabulary (zstd-3 stores about 40 % of it: it compresses less,
//! and more slowly, than real prose or source code).
//! Throughput is always plaintext (source) bytes per second.
//!
//! Run: `cargo bench --bench pipeline`, or a subset: `cargo bench --bench pipeline -- chunking`.

use cairn::backend::open_url;
use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
use cairn::blob::{open_blob, seal_blob};
use cairn::chunker::{Chunker, ChunkerParams};
use cairn::compress::{compress, decompress, looks_incompressible, Compression};
use cairn::crypto::{self, MasterKeys, ObjectKind, Secret};
use cairn::id::{BlobId, BlobKind, SnapshotId};
use cairn::repository::{InitOptions, OpenOptions, ReadRepository, Repository};
use cairn::restore::{restore, NoRestoreProgress, RestoreOptions};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Size of each in-memory input of the stage benchmarks.
const INPUT_LEN: usize = 8 * 1024 * 1024;
/// The password of the benchmark repositories.
const PASSWORD: &[u8] = b"cairn bench";

// ---------------------------------------------------------------------------------------------
// Deterministic inputs
// ---------------------------------------------------------------------------------------------

/// xorshift64*: fast, deterministic, good enough to defeat zstd.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Incompressible bytes.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text-like bytes: words from a fixed 4000-word pseudo vocabulary, chosen with a skew (the
/// minimum of two uniform draws) so common words dominate, with punctuation, numbers and lines.
/// The vocabulary is the same for every seed, as a language would be.
fn text_bytes(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: u64 = 4000;
    let mut vocab_rng = Rng::new(0x7e57);
    let vocab: Vec<Vec<u8>> = (0..WORDS)
        .map(|_| {
            let n = 1 + vocab_rng.below(5) + vocab_rng.below(6);
            (0..n)
                .map(|_| b"etaoinshrdlucmfwypvbgkjqxz"[vocab_rng.below(26).min(vocab_rng.below(26)) as usize])
                .collect()
        })
        .collect();
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 64);
    let mut line = 0usize;
    while out.len() < len {
        let r = rng.next();
        let word = &vocab[((r % WORDS).min((r >> 32) % WORDS)) as usize];
        out.extend_from_slice(word);
        line += word.len() + 1;
        match (r >> 24) % 32 {
            0 => out.extend_from_slice(b", "),
            1 => out.extend_from_slice(b". "),
            2 => out.extend_from_slice(format!(" {} ", (r >> 40) % 10_000).as_bytes()),
            _ if line > 72 => {
                out.push(b'\n');
                line = 0;
            }
            _ => out.push(b' '),
        }
    }
    out.truncate(len);
    out
}

/// A named input and the chunks the default chunker cuts it into (chunk-sized work units, as the
/// backup pipeline hands them to compression and sealing).
struct Input {
    name: &'static str,
    data: Vec<u8>,
    cuts: Vec<usize>,
}

impl Input {
    fn chunks(&self) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(self.cuts.len());
        let mut pos = 0;
        for &n in &self.cuts {
            out.push(&self.data[pos..pos + n]);
            pos += n;
        }
        out
    }

    fn bytes(&self) -> Throughput {
        Throughput::Bytes(self.data.len() as u64)
    }
}

fn inputs(chunker: &Chunker) -> Vec<Input> {
    [("random", random_bytes(INPUT_LEN, 1)), ("text", text_bytes(INPUT_LEN, 2))]
        .into_iter()
        .map(|(name, data)| {
            let cuts = chunker.cuts(&data);
            Input { name, data, cuts }
        })
        .collect()
}

fn keys() -> MasterKeys {
    // Fixed keys: the same cut points in every run, so runs compare.
    MasterKeys {
        id_key: Secret([11; 32]),
        chunk_key: Secret([12; 32]),
        index_key: Secret([13; 32]),
        writer_key: Secret([14; 32]),
        ..MasterKeys::generate()
    }
}

fn stage_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    // Flat sampling: ten equal samples, so the slow cases (zstd on text) need ten iterations, not 55.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

// ---------------------------------------------------------------------------------------------
// Stage benchmarks
// ---------------------------------------------------------------------------------------------

fn bench_stages(c: &mut Criterion) {
    let keys = keys();
    let chunker = Chunker::new(ChunkerParams::default(), &keys.chunk_key).expect("default chunker parameters");
    let inputs = inputs(&chunker);
    for i in &inputs {
        let z: usize =
            i.chunks().iter().map(|ch| compress(ch, Compression::Zstd(3)).map_or(ch.len(), |v| v.len())).sum();
        eprintln!(
            "input {}: {} bytes, {} chunks, zstd-3 stores {:.1} % of it",
            i.name,
            i.data.len(),
            i.cuts.len(),
            100.0 * z as f64 / i.data.len() as f64
        );
    }

    // Chunking: cut points of a buffer in memory, then the streaming reader the backup uses.
    let mut g = stage_group(c, "chunking");
    for i in &inputs {
        g.throughput(i.bytes());
        g.bench_with_input(BenchmarkId::new("cuts", i.name), &i.data, |b, data| {
            b.iter(|| black_box(chunker.cuts(black_box(data))));
        });
        g.bench_with_input(BenchmarkId::new("stream", i.name), &i.data, |b, data| {
            b.iter(|| {
                let mut total = 0;
                for ch in chunker.stream(black_box(&data[..])) {
                    total += ch.expect("reading a slice").len();
                }
                assert_eq!(total, data.len());
            });
        });
    }
    // One small file through the streaming reader: the fixed cost per file. Backup passes the
    // file size as a hint; a stream (stdin, command) has none and gets a 2 × max_size buffer.
    let small = random_bytes(4096, 3);
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_with_input(BenchmarkId::new("stream_with_hint", "one-4KiB-file"), &small, |b, data| {
        b.iter(|| black_box(chunker.stream_with_hint(black_box(&data[..]), Some(data.len() as u64)).count()));
    });
    g.bench_with_input(BenchmarkId::new("stream", "one-4KiB-file"), &small, |b, data| {
        b.iter(|| black_box(chunker.stream(black_box(&data[..])).count()));
    });
    g.finish();

    // Content ids: keyed BLAKE3 per chunk (single-threaded, as the backup workers call it).
    let mut g = stage_group(c, "hashing");
    for i in &inputs {
        let chunks = i.chunks();
        g.throughput(i.bytes());
        g.bench_function(BenchmarkId::new("content_id", i.name), |b| {
            b.iter(|| {
                for ch in &chunks {
                    black_box(keys.content_id(black_box(ch)));
                }
            });
        });
    }
    g.finish();

    // Compression per chunk at the default level 3, the sample test alone, and decompression.
    let mut g = stage_group(c, "compression");
    for i in &inputs {
        let chunks = i.chunks();
        g.throughput(i.bytes());
        g.bench_function(BenchmarkId::new("compress-zstd3", i.name), |b| {
            b.iter(|| {
                for ch in &chunks {
                    black_box(compress(black_box(ch), Compression::Zstd(3)));
                }
            });
        });
        g.bench_function(BenchmarkId::new("looks_incompressible", i.name), |b| {
            b.iter(|| {
                for ch in &chunks {
                    black_box(looks_incompressible(black_box(ch)));
                }
            });
        });
        // Plain zstd-3 with no sample test: on random, what the skip saves; on text, what the
        // sample test costs on data that does compress.
        g.bench_function(BenchmarkId::new("zstd3-without-skip", i.name), |b| {
            b.iter(|| {
                for ch in &chunks {
                    black_box(zstd::bulk::compress(black_box(ch), 3).expect("zstd"));
                }
            });
        });
        let packed: Vec<(Vec<u8>, usize)> =
            chunks.iter().filter_map(|ch| compress(ch, Compression::Zstd(3)).map(|z| (z, ch.len()))).collect();
        if packed.is_empty() {
            continue;
        }
        g.throughput(Throughput::Bytes(packed.iter().map(|(_, n)| *n as u64).sum()));
        g.bench_function(BenchmarkId::new("decompress-zstd3", i.name), |b| {
            b.iter(|| {
                for (z, n) in &packed {
                    black_box(decompress(black_box(z), *n).expect("decompress"));
                }
            });
        });
    }
    g.finish();

    // Sealing: a whole data blob (compress where it pays + frame + XChaCha20-Poly1305), its
    // opening (AEAD + decompress; no id check), and the bare AEAD on the same chunks.
    let key = Secret([21; 32]);
    let repo = keys.repo_id;
    let mut g = stage_group(c, "sealing");
    for i in &inputs {
        let chunks = i.chunks();
        let ids: Vec<BlobId> = chunks.iter().map(|ch| keys.content_id(ch)).collect();
        g.throughput(i.bytes());
        g.bench_function(BenchmarkId::new("seal_blob-zstd3", i.name), |b| {
            b.iter(|| {
                for (ch, id) in chunks.iter().zip(&ids) {
                    black_box(seal_blob(&key, &repo, BlobKind::Data, id, black_box(ch), Compression::Zstd(3)));
                }
            });
        });
        let sealed: Vec<Vec<u8>> = chunks
            .iter()
            .zip(&ids)
            .map(|(ch, id)| seal_blob(&key, &repo, BlobKind::Data, id, ch, Compression::Zstd(3)))
            .collect();
        g.bench_function(BenchmarkId::new("open_blob", i.name), |b| {
            b.iter(|| {
                for ((s, id), ch) in sealed.iter().zip(&ids).zip(&chunks) {
                    black_box(open_blob(&key, &repo, BlobKind::Data, id, black_box(s), ch.len()).expect("open_blob"));
                }
            });
        });
        if i.name == "random" {
            let aads: Vec<[u8; 71]> = ids.iter().map(|id| crypto::aad(&repo, ObjectKind::DataBlob, &id.0)).collect();
            g.bench_function(BenchmarkId::new("aead-seal", i.name), |b| {
                b.iter(|| {
                    for (ch, aad) in chunks.iter().zip(&aads) {
                        black_box(crypto::seal(&key, aad, black_box(ch)));
                    }
                });
            });
            let boxes: Vec<Vec<u8>> = chunks.iter().zip(&aads).map(|(ch, aad)| crypto::seal(&key, aad, ch)).collect();
            g.bench_function(BenchmarkId::new("aead-open", i.name), |b| {
                b.iter(|| {
                    for (s, aad) in boxes.iter().zip(&aads) {
                        black_box(crypto::open(&key, aad, black_box(s)).expect("open"));
                    }
                });
            });
        }
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Whole pipeline: backup and restore of a generated tree on local disk
// ---------------------------------------------------------------------------------------------

/// Files in the generated tree.
const TREE_FILES: u64 = 320;

/// Writes the tree: 16 directories (half with a subdirectory), 320 files; 8 of 2 MiB, the rest
/// 4–104 KiB; alternately random and text. About 33 MiB. Returns the file bytes.
fn make_tree(root: &Path) -> u64 {
    let mut rng = Rng::new(42);
    let mut total = 0;
    for i in 0..TREE_FILES {
        let d = i % 16;
        let mut dir = root.join(format!("dir{d:02}"));
        if d % 2 == 1 && i % 3 == 0 {
            dir = dir.join("sub");
        }
        std::fs::create_dir_all(&dir).expect("create a tree directory");
        let size = if i % 40 == 7 { 2 << 20 } else { 4096 + rng.below(100 * 1024) as usize };
        let data = if i % 2 == 0 { random_bytes(size, 1000 + i) } else { text_bytes(size, 1000 + i) };
        std::fs::write(dir.join(format!("file{i:03}.{}", if i % 2 == 0 { "bin" } else { "txt" })), &data)
            .expect("write a tree file");
        total += size as u64;
    }
    total
}

/// A fresh repository in `dir/repo` with its cache in `dir/cache`.
fn new_repo(dir: &Path) -> ReadRepository {
    let backend = open_url(dir.join("repo").to_str().expect("UTF-8 temp path")).expect("open the repository path");
    let opts = OpenOptions { cache_root: Some(dir.join("cache")), no_cache: false, upgrade_config: false };
    Repository::init(backend, PASSWORD, &InitOptions::default(), &opts)
        .and_then(|r| r.readable())
        .expect("init the repository")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory");
    for e in std::fs::read_dir(from).expect("list a directory") {
        let e = e.expect("list a directory");
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy a file");
        }
    }
}

/// A copy of the empty repository `template` (made by [`new_repo`]) in `dir/repo`, opened with
/// its keys and a new cache in `dir/cache`: a fresh repository without another argon2id run.
fn copy_of_empty_repo(template: &ReadRepository, template_dir: &Path, dir: &Path) -> ReadRepository {
    copy_dir(&template_dir.join("repo"), &dir.join("repo"));
    let backend = open_url(dir.join("repo").to_str().expect("UTF-8 temp path")).expect("open the repository path");
    let opts = OpenOptions { cache_root: Some(dir.join("cache")), no_cache: false, upgrade_config: false };
    Repository::open_with_keys(backend, template.keys().clone(), template.key_id(), &opts)
        .and_then(|r| r.readable())
        .expect("open the copy")
}

fn backup_tree(repo: &ReadRepository, src: &Path) -> cairn::backup::BackupResult {
    let r = backup(repo, vec![BackupSource::Paths(vec![src.to_path_buf()])], &BackupOptions::default(), &NoProgress)
        .expect("backup");
    assert!(r.errors.is_empty(), "backup errors: {:?}", r.errors);
    r
}

fn pipeline_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g
}

fn bench_pipeline(c: &mut Criterion) {
    let src_tmp = tempfile::tempdir().expect("temp dir");
    let src: PathBuf = src_tmp.path().join("src");
    let total = make_tree(&src);
    // The files cache does not trust files modified just before a backup starts (racily clean).
    std::thread::sleep(Duration::from_millis(2100));
    eprintln!("tree: {TREE_FILES} files, {total} bytes in {}", src.display());

    let mut g = pipeline_group(c, "pipeline");
    g.throughput(Throughput::Bytes(total));

    // First backup into a fresh (copied) empty repository with a fresh cache; the copy is not timed.
    let template_tmp = tempfile::tempdir().expect("temp dir");
    let template = new_repo(template_tmp.path());
    g.bench_function("backup-first", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temp dir");
                let repo = copy_of_empty_repo(&template, template_tmp.path(), dir.path());
                let t = Instant::now();
                let r = backup_tree(&repo, &src);
                spent += t.elapsed();
                assert_eq!(r.summary.files_new, TREE_FILES);
                drop(repo);
            }
            spent
        });
    });

    // The repository that the unchanged backup and the restore use.
    let repo_tmp = tempfile::tempdir().expect("temp dir");
    let repo = new_repo(repo_tmp.path());
    let first = backup_tree(&repo, &src);
    let stored = first.summary.bytes_added_stored;
    eprintln!(
        "first backup: {} blobs, {} plain bytes added, {} stored ({:.1} %)",
        first.summary.blobs_added,
        first.summary.bytes_added,
        stored,
        100.0 * stored as f64 / first.summary.bytes_added.max(1) as f64
    );
    let snap: SnapshotId = first.snapshot_id.expect("a snapshot");

    // Unchanged second backup: the files cache answers for every file; only trees and a snapshot.
    g.bench_function("backup-unchanged", |b| {
        b.iter(|| {
            let r = backup_tree(&repo, &src);
            assert_eq!(r.summary.files_unchanged, TREE_FILES, "the files cache should cover every file");
            r
        });
    });

    // Restore of the first snapshot into a fresh directory (no verify); cleanup is not timed.
    let root = repo.load_snapshot(&snap).expect("load the snapshot").root();
    let out = tempfile::tempdir().expect("temp dir");
    let mut n = 0u64;
    g.bench_function("restore", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let target = out.path().join(format!("r{n}"));
                let opts = RestoreOptions { target: target.clone(), ..Default::default() };
                let t = Instant::now();
                let r = restore(&repo, &root, None, &opts, &NoRestoreProgress).expect("restore");
                spent += t.elapsed();
                assert!(r.errors.is_empty(), "restore errors: {:?}", r.errors);
                assert_eq!(r.bytes, total);
                std::fs::remove_dir_all(&target).expect("remove the restore target");
            }
            spent
        });
    });
    g.finish();
}

criterion_group!(benches, bench_stages, bench_pipeline);
criterion_main!(benches);
