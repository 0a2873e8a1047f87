//! The load client of benches/serve-load.sh (standard library only: the script builds it with `rustc -O`).
//!
//! `client gen DIR BATCH BYTES` writes about BYTES of incompressible files under DIR/bBATCH/ and prints one manifest
//! line per file, `PATH<TAB>SIZE<TAB>SEED`; a file's bytes are a function of its seed, so a download is checked by
//! generating the same bytes again (no copy of the data is kept).
//!
//! `client load ADDR TOKEN MANIFEST CLIENTS SECONDS SLOW DISCONNECTING` runs CLIENTS threads for SECONDS against
//! `cairn serve` at ADDR, each on its own keep-alive connection, each request one of: list a directory of a snapshot
//! (`/ls`; the answer must name a file known to be there), download a file (`/download`; every byte compared), or
//! list the snapshots (every snapshot id must be there). Meanwhile SLOW clients each read one large download at one
//! byte per second, and DISCONNECTING clients keep starting downloads and dropping the connection after a few KiB.
//! It prints the request count, errors, bytes checked, p50/p90/p99/max latency per kind (a download's latency runs
//! from sending the request to the last byte read and checked; `dl 1st B` is its time to the first byte of the body,
//! and `dl ≤1 MiB` / `dl 4–8 MiB` split the downloads by file size), the fewest requests the
//! clients completed in any one second and the longest time in which none completed (a stall shows there), and
//! exits 1 on any error or wrong byte. Manifest lines carry the snapshot id in front: `SNAPSHOT<TAB>PATH<TAB>SIZE<TAB>SEED`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The byte stream of one file: splitmix64 from its seed.
struct Gen {
    state: u64,
    buf: [u8; 8],
    used: usize,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen { state: seed, buf: [0; 8], used: 8 }
    }
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.used == 8 {
                self.buf = self.next_u64().to_le_bytes();
                self.used = 0;
            }
            *b = self.buf[self.used];
            self.used += 1;
        }
    }
}

fn seed_of(batch: u64, file: u64) -> u64 {
    Gen::new(batch.wrapping_mul(1_000_003) ^ file.rotate_left(29) ^ 0x5eed).next_u64()
}

/// Sizes cycle through these (about 2.3 MiB on average); each batch also has one 48 MiB file for the slow clients.
const SIZES: [u64; 6] = [3 * 1024, 20 * 1024, 150 * 1024, 1024 * 1024, 4 * 1024 * 1024, 8 * 1024 * 1024 + 123];
const LARGE: u64 = 48 * 1024 * 1024;
const PER_DIR: u64 = 64;

fn gen(dir: &str, batch: u64, bytes: u64) {
    let mut total = 0u64;
    let mut file = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let out = std::io::stdout();
    let mut out = out.lock();
    while total < bytes {
        let size = if file == 0 { LARGE } else { SIZES[(file % SIZES.len() as u64) as usize] };
        let sub = format!("{dir}/b{batch}/d{:03}", file / PER_DIR);
        std::fs::create_dir_all(&sub).expect("create the batch directory");
        let path = format!("{sub}/f{file:05}.bin");
        let seed = seed_of(batch, file);
        let mut g = Gen::new(seed);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create a file"));
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            g.fill(&mut buf[..n]);
            f.write_all(&buf[..n]).expect("write a file");
            left -= n as u64;
        }
        f.flush().expect("flush a file");
        writeln!(out, "{path}\t{size}\t{seed}").expect("stdout");
        total += size;
        file += 1;
    }
}

#[derive(Clone)]
struct Entry {
    snapshot: String,
    path: String,
    size: u64,
    seed: u64,
}

fn read_manifest(path: &str) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).expect("read the manifest");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "manifest line {l:?}");
            Entry {
                snapshot: f[0].into(),
                path: f[1].into(),
                size: f[2].parse().expect("size"),
                seed: f[3].parse().expect("seed"),
            }
        })
        .collect()
}

fn encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    addr: String,
    token: String,
    r: Option<BufReader<TcpStream>>,
}

/// What a response body is checked against.
enum Check<'a> {
    /// Exactly these bytes, generated from a seed.
    Bytes(&'a Entry),
    /// The body contains every one of these strings.
    Contains(Vec<String>),
}

impl Conn {
    fn new(addr: &str, token: &str) -> Conn {
        Conn { addr: addr.into(), token: token.into(), r: None }
    }

    fn connect(&mut self) -> Result<&mut BufReader<TcpStream>, String> {
        if self.r.is_none() {
            let s = TcpStream::connect(&self.addr).map_err(|e| format!("connect: {e}"))?;
            s.set_nodelay(true).ok();
            s.set_read_timeout(Some(Duration::from_secs(60))).ok();
            self.r = Some(BufReader::with_capacity(256 * 1024, s));
        }
        Ok(self.r.as_mut().expect("connected"))
    }

    /// GET `target`, checks status 200 and the body; returns the body length and when its first byte came.
    fn get(&mut self, target: &str, check: Check) -> Result<(u64, Option<Instant>), String> {
        let res = self.get_inner(target, check);
        if res.is_err() {
            self.r = None;
        }
        res
    }

    fn get_inner(&mut self, target: &str, check: Check) -> Result<(u64, Option<Instant>), String> {
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
            self.addr, self.token
        );
        // A kept-alive connection the server closed meanwhile: one retry on a fresh one.
        let fresh = self.r.is_none();
        let sent = self.connect()?.get_mut().write_all(req.as_bytes());
        if sent.is_err() && !fresh {
            self.r = None;
            self.connect()?.get_mut().write_all(req.as_bytes()).map_err(|e| format!("send: {e}"))?;
        } else {
            sent.map_err(|e| format!("send: {e}"))?;
        }
        let r = self.r.as_mut().expect("connected");
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| format!("status line: {e}"))? == 0 {
            return Err("connection closed before the status line".into());
        }
        let status: u16 = line.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(format!("status line {line:?}"))?;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).map_err(|e| format!("header: {e}"))?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
                match k.as_str() {
                    "content-length" => length = v.parse().ok(),
                    "transfer-encoding" => chunked = v.contains("chunked"),
                    "connection" => close = v.contains("close"),
                    _ => {}
                }
            }
        }
        let mut body = Body { gen: None, want: None, seen: 0, text: Vec::new(), first: None };
        match &check {
            Check::Bytes(e) => {
                body.gen = Some(Gen::new(e.seed));
                body.want = Some(e.size);
            }
            Check::Contains(_) => {}
        }
        let mut buf = vec![0u8; 128 * 1024];
        if chunked {
            loop {
                let mut sl = String::new();
                r.read_line(&mut sl).map_err(|e| format!("chunk size: {e}"))?;
                let n = u64::from_str_radix(sl.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| format!("chunk size {sl:?}"))?;
                if n == 0 {
                    let mut end = String::new();
                    r.read_line(&mut end).map_err(|e| format!("chunk end: {e}"))?;
                    break;
                }
                copy(r, n, &mut buf, &mut body)?;
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf).map_err(|e| format!("chunk crlf: {e}"))?;
            }
        } else if let Some(n) = length {
            copy(r, n, &mut buf, &mut body)?;
        } else {
            return Err("response without length".into());
        }
        if close {
            self.r = None;
        }
        if status != 200 {
            return Err(format!("status {status}: {}", String::from_utf8_lossy(&body.text)));
        }
        match check {
            Check::Bytes(e) => {
                if body.seen != e.size {
                    return Err(format!("{}: {} bytes, want {}", e.path, body.seen, e.size));
                }
            }
            Check::Contains(needles) => {
                let text = String::from_utf8_lossy(&body.text);
                for n in needles {
                    if !text.contains(&n) {
                        return Err(format!("{target}: answer lacks {n:?}"));
                    }
                }
            }
        }
        Ok((body.seen, body.first))
    }
}

struct Body {
    gen: Option<Gen>,
    want: Option<u64>,
    seen: u64,
    text: Vec<u8>,
    /// When the first byte of the body was read.
    first: Option<Instant>,
}

fn copy(r: &mut BufReader<TcpStream>, mut n: u64, buf: &mut [u8], body: &mut Body) -> Result<(), String> {
    let mut expect = vec![0u8; buf.len()];
    while n > 0 {
        let k = n.min(buf.len() as u64) as usize;
        r.read_exact(&mut buf[..k]).map_err(|e| format!("body: {e}"))?;
        body.first.get_or_insert_with(Instant::now);
        match &mut body.gen {
            Some(g) => {
                if body.seen + k as u64 > body.want.unwrap_or(0) {
                    return Err(format!("more bytes than the file has ({})", body.want.unwrap_or(0)));
                }
                g.fill(&mut expect[..k]);
                if expect[..k] != buf[..k] {
                    return Err(format!("wrong bytes near offset {}", body.seen));
                }
            }
            None => body.text.extend_from_slice(&buf[..k]),
        }
        body.seen += k as u64;
        n -= k as u64;
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn dirname(p: &str) -> &str {
    &p[..p.rfind('/').unwrap_or(0)]
}

fn load(args: &[String]) -> i32 {
    let [addr, token, manifest, clients, seconds, slow, disconnecting] = args else {
        eprintln!("usage: client load ADDR TOKEN MANIFEST CLIENTS SECONDS SLOW DISCONNECTING");
        return 2;
    };
    let entries = Arc::new(read_manifest(manifest));
    let clients: usize = clients.parse().expect("CLIENTS");
    let seconds: u64 = seconds.parse().expect("SECONDS");
    let slow: usize = slow.parse().expect("SLOW");
    let disconnecting: usize = disconnecting.parse().expect("DISCONNECTING");
    let mut snapshots: Vec<String> = entries.iter().map(|e| e.snapshot.clone()).collect();
    snapshots.sort();
    snapshots.dedup();
    let snapshots = Arc::new(snapshots);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let per_second: Arc<Vec<AtomicU64>> = Arc::new((0..seconds + 120).map(|_| AtomicU64::new(0)).collect());
    let completions: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let large: Vec<Entry> = entries.iter().filter(|e| e.size == LARGE).cloned().collect();
    assert!(!large.is_empty(), "the manifest has no large file");

    // Slow readers: one large download each, read at one byte per second until the end; the bytes read must be
    // the file's first bytes.
    let mut side = Vec::new();
    for i in 0..slow {
        let (addr, token, e, stop) = (addr.clone(), token.clone(), large[i % large.len()].clone(), stop.clone());
        side.push(std::thread::spawn(move || -> Result<String, String> {
            let mut s = TcpStream::connect(&addr).map_err(|e| format!("slow: connect: {e}"))?;
            let target = format!("/api/v1/snapshots/{}/download?path={}", e.snapshot, encode(&e.path));
            write!(s, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n")
                .map_err(|e| format!("slow: send: {e}"))?;
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).map_err(|e| format!("slow: head: {e}"))?;
                head.push(b[0]);
            }
            if !head.starts_with(b"HTTP/1.1 200") {
                return Err(format!("slow: {}", String::from_utf8_lossy(&head)));
            }
            let chunked = String::from_utf8_lossy(&head).to_ascii_lowercase().contains("transfer-encoding: chunked");
            let mut got = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                s.read_exact(&mut b).map_err(|e| format!("slow: body after {} bytes: {e}", got.len()))?;
                got.push(b[0]);
                std::thread::sleep(Duration::from_secs(1));
            }
            // With chunked encoding the first bytes are the chunk size line: check what follows it.
            let data = if chunked {
                match got.windows(2).position(|w| w == b"\r\n") {
                    Some(i) => got[i + 2..].to_vec(),
                    None => Vec::new(),
                }
            } else {
                got.clone()
            };
            let mut want = vec![0u8; data.len()];
            Gen::new(e.seed).fill(&mut want);
            if want != data {
                return Err("slow: wrong bytes".into());
            }
            Ok(format!("slow reader {i}: read {} bytes at 1 byte/s, connection still open at the end", got.len()))
        }));
    }
    // Disconnecting clients: start a large download, read 16 KiB (or nothing), close; again.
    let dropped = Arc::new(AtomicU64::new(0));
    for i in 0..disconnecting {
        let (addr, token, large, stop, dropped) = (addr.clone(), token.clone(), large.clone(), stop.clone(), dropped.clone());
        side.push(std::thread::spawn(move || -> Result<String, String> {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let e = &large[(n as usize) % large.len()];
                let mut s = TcpStream::connect(&addr).map_err(|e| format!("disconnecting: connect: {e}"))?;
                let target = format!("/api/v1/snapshots/{}/download?path={}", e.snapshot, encode(&e.path));
                write!(s, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n")
                    .map_err(|e| format!("disconnecting: send: {e}"))?;
                if n % 2 == 0 {
                    let mut b = vec![0u8; 16 * 1024];
                    s.read_exact(&mut b).map_err(|e| format!("disconnecting: read: {e}"))?;
                }
                drop(s);
                n += 1;
                dropped.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(format!("disconnecting client {i}: dropped {n} downloads midway"))
        }));
    }

    let mut workers = Vec::new();
    for w in 0..clients {
        let (addr, token, entries, snapshots) = (addr.clone(), token.clone(), entries.clone(), snapshots.clone());
        let (per_second, completions, errors) = (per_second.clone(), completions.clone(), errors.clone());
        workers.push(std::thread::spawn(move || {
            let mut rng = Gen::new(0xC0FFEE + w as u64);
            let mut conn = Conn::new(&addr, &token);
            let mut lat: [Vec<u64>; 6] = Default::default();
            let mut bytes = 0u64;
            let mut mine = Vec::new();
            while Instant::now() < deadline {
                let roll = rng.next_u64() % 100;
                let e = &entries[(rng.next_u64() % entries.len() as u64) as usize];
                let t0 = Instant::now();
                let (kind, res) = if roll < 45 {
                    let target = format!("/api/v1/snapshots/{}/ls?path={}", e.snapshot, encode(dirname(&e.path)));
                    let name = e.path.rsplit('/').next().unwrap_or("").to_string();
                    (0, conn.get(&target, Check::Contains(vec![name])))
                } else if roll < 95 && e.size != LARGE {
                    let target = format!("/api/v1/snapshots/{}/download?path={}", e.snapshot, encode(&e.path));
                    (1, conn.get(&target, Check::Bytes(e)))
                } else {
                    (2, conn.get("/api/v1/snapshots", Check::Contains(snapshots.to_vec())))
                };
                let done = Instant::now();
                match res {
                    Ok((n, first)) => {
                        bytes += if kind == 1 { n } else { 0 };
                        lat[kind].push(done.duration_since(t0).as_micros() as u64);
                        if kind == 1 {
                            // Time to first byte: request sent to the first byte of the body read.
                            lat[3].push(first.unwrap_or(done).duration_since(t0).as_micros() as u64);
                            // By size: what the download percentiles are made of.
                            let by = if e.size <= 1024 * 1024 { 4 } else { 5 };
                            lat[by].push(done.duration_since(t0).as_micros() as u64);
                        }
                        let at = done.duration_since(start).as_micros() as u64;
                        mine.push(at);
                        if let Some(c) = per_second.get((at / 1_000_000) as usize) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(msg) => errors.lock().expect("errors").push(msg),
                }
            }
            completions.lock().expect("completions").extend(mine);
            (lat, bytes)
        }));
    }
    let mut lat: [Vec<u64>; 6] = Default::default();
    let mut bytes = 0u64;
    for w in workers {
        let (l, b) = w.join().expect("a worker panicked");
        for k in 0..6 {
            lat[k].extend_from_slice(&l[k]);
        }
        bytes += b;
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut failed = false;
    let mut side_report = Vec::new();
    for t in side {
        match t.join().expect("a side client panicked") {
            Ok(s) => side_report.push(s),
            Err(e) => {
                failed = true;
                side_report.push(format!("FAILED {e}"));
            }
        }
    }
    let errors = errors.lock().expect("errors").clone();
    let mut all = completions.lock().expect("completions").clone();
    all.sort_unstable();
    let mut gap = all.first().copied().unwrap_or(0);
    for w in all.windows(2) {
        gap = gap.max(w[1] - w[0]);
    }
    let whole = (seconds as usize).min(per_second.len());
    let min_second = per_second[..whole].iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
    let total: usize = lat[..3].iter().map(Vec::len).sum();
    println!(
        "clients {clients}, {elapsed:.1} s: {total} requests ({:.0}/s), {} errors, {:.1} MiB downloaded and checked byte for byte ({:.1} MiB/s)",
        total as f64 / elapsed,
        errors.len(),
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / elapsed
    );
    for (k, name) in ["ls", "download", "snapshots", "dl 1st B", "dl ≤1 MiB", "dl 4–8 MiB"].iter().enumerate() {
        let l = &mut lat[k];
        l.sort_unstable();
        println!(
            "  {name:<10} {:>7} requests  p50 {:>8.1} ms  p90 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
            l.len(),
            percentile(l, 0.50),
            percentile(l, 0.90),
            percentile(l, 0.99),
            l.last().map_or(f64::NAN, |m| *m as f64 / 1000.0)
        );
    }
    println!(
        "  every second of the run completed at least {min_second} requests; longest time without a completed request: {:.1} ms",
        gap as f64 / 1000.0
    );
    println!("  {} downloads dropped midway by the disconnecting clients", dropped.load(Ordering::Relaxed));
    for s in side_report {
        println!("  {s}");
    }
    for e in errors.iter().take(20) {
        println!("  ERROR {e}");
    }
    if !errors.is_empty() || failed || min_second == 0 {
        println!("FAILED");
        return 1;
    }
    println!("OK");
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("gen") if args.len() == 4 => {
            gen(&args[1], args[2].parse().expect("BATCH"), args[3].parse().expect("BYTES"));
            0
        }
        Some("load") => load(&args[1..]),
        _ => {
            eprintln!("usage: client gen DIR BATCH BYTES | client load ADDR TOKEN MANIFEST CLIENTS SECONDS SLOW DISCONNECTING");
            2
        }
    };
    std::process::exit(code);
}
