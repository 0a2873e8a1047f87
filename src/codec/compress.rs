//! zstd compression with a cheap skip for incompressible data (format-spec §5.2). Pure.

use std::cell::RefCell;

/// The zstd level used unless a backup or the repository's config says otherwise; tree blobs
/// always use it (unless compression is off).
pub const DEFAULT_LEVEL: i32 = 3;
/// The largest plaintext a blob may have; decoders refuse larger claims.
pub const MAX_PLAIN_LEN: usize = 64 * 1024 * 1024;

/// The compression setting of a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Store everything raw.
    Off,
    /// zstd at this level; blobs that do not compress are stored raw.
    Zstd(i32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(DEFAULT_LEVEL)
    }
}

impl Compression {
    /// The setting a config's `compression_level` names (0 = off).
    pub fn from_level(level: i32) -> Self {
        match level {
            0 => Compression::Off,
            l => Compression::Zstd(l),
        }
    }

    /// The setting for tree blobs when data blobs use `self`: the default level, or off.
    pub fn for_trees(self) -> Self {
        match self {
            Compression::Off => Compression::Off,
            Compression::Zstd(_) => Compression::default(),
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" | "default" => Ok(Compression::default()),
            "off" | "none" => Ok(Compression::Off),
            "max" => Ok(Compression::Zstd(19)),
            "fast" => Ok(Compression::Zstd(1)),
            n => match n.parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) => Ok(Compression::Zstd(l)),
                _ => Err(format!("compression must be auto, off, fast, max or a level 1..22, not {n:?}")),
            },
        }
    }
}

const SAMPLE: usize = 8 * 1024;

/// The hash table of the default level, one size smaller than zstd's own for inputs over 256 KB
/// (2^16 entries, not 2^17). Chunks and bundle bodies are about 1 MiB, each compressed alone, and
/// the smaller table stays in a core's cache: on the benchmark corpus zstd compresses 13 % faster
/// for 0.3 % more bytes, on the SQL dump 5 % faster for 0.3 % more (benches/README.md, "Session
/// 17"). The frames are ordinary zstd frames; readers see no difference.
const DEFAULT_LEVEL_HASH_LOG: u32 = 16;

thread_local! {
    /// One decompression context per thread: making one per blob cost several percent of a backup.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    static COMPRESSORS: RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(Vec::new()) };
}

fn with_compressor<T>(level: i32, f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> T) -> T {
    COMPRESSORS.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(pos) = c.iter().position(|(l, _)| *l == level) {
            f(&mut c[pos].1)
        } else {
            let mut comp = zstd::bulk::Compressor::new(level).expect("zstd compressor");
            if level == DEFAULT_LEVEL {
                comp.set_parameter(zstd::zstd_safe::CParameter::HashLog(DEFAULT_LEVEL_HASH_LOG))
                    .expect("a hash log zstd accepts");
            }
            c.push((level, comp));
            let last = c.len() - 1;
            f(&mut c[last].1)
        }
    })
}

/// True when samples of `data` suggest compression will not pay (≥ 97 % of their size).
pub fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < 4 * SAMPLE {
        return false;
    }
    // The first sample alone decides when it compresses to at most 7/8 of its size; otherwise the
    // middle and end samples are compressed together and the two results judged by their sum
    // (format-spec §5.2, writer policy). Data that compresses costs one sample instead of three;
    // data that does not costs what compressing the three together cost before. A failed
    // compression counts as no saving.
    let size = |bytes: &[u8]| with_compressor(1, |c| c.compress(bytes)).map_or(bytes.len(), |c| c.len());
    let first = size(&data[..SAMPLE]);
    if first * 8 <= SAMPLE * 7 {
        return false;
    }
    let mut rest = Vec::with_capacity(2 * SAMPLE);
    for at in [data.len() / 2 - SAMPLE / 2, data.len() - SAMPLE] {
        rest.extend_from_slice(&data[at..at + SAMPLE]);
    }
    (first + size(&rest)) * 100 >= 3 * SAMPLE * 97
}

/// Compresses `data`, or returns `None` when it should be stored raw.
pub fn compress(data: &[u8], setting: Compression) -> Option<Vec<u8>> {
    let Compression::Zstd(level) = setting else {
        return None;
    };
    if data.len() < 64 || looks_incompressible(data) {
        return None;
    }
    let out = with_compressor(level, |c| c.compress(data)).ok()?;
    (out.len() < data.len()).then_some(out)
}

/// Decompresses a zstd payload whose plain length is known; fails on any mismatch.
pub fn decompress(data: &[u8], plain_len: usize) -> Result<Vec<u8>, String> {
    if plain_len > MAX_PLAIN_LEN {
        return Err(format!("plain length {plain_len} exceeds the maximum"));
    }
    let out = with_decompressor(|d| d.decompress(data, plain_len)).map_err(|e| format!("zstd: {e}"))?;
    if out.len() != plain_len {
        return Err(format!("decompressed {} bytes, expected {}", out.len(), plain_len));
    }
    Ok(out)
}

/// True when `compressed` decompresses to exactly `plain`: the writer's check of its compressor
/// before a payload is sealed (format-spec §5.4). A payload that fails to decompress, or yields
/// more, fewer or other bytes, is `false`.
pub fn decompresses_to(compressed: &[u8], plain: &[u8]) -> bool {
    if plain.len() > MAX_PLAIN_LEN {
        return false;
    }
    let mut out = Vec::with_capacity(plain.len());
    let n = with_decompressor(|d| d.decompress_to_buffer(compressed, &mut out));
    n.ok() == Some(plain.len()) && out == plain
}

/// Runs `f` with this thread's decompression context, made on first use.
fn with_decompressor<T>(
    f: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        match &mut *d {
            Some(d) => f(d),
            None => f(d.insert(zstd::bulk::Decompressor::new()?)),
        }
    })
}

/// Decompresses one zstd frame that records its content size, refusing a frame without one or
/// larger than `max` bytes (bundle bodies, format-spec §5.5).
pub fn decompress_frame(data: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let n = match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(n)) => n,
        Ok(None) => return Err("zstd frame does not record its content size".into()),
        Err(_) => return Err("not a zstd frame".into()),
    };
    if n > max as u64 {
        return Err(format!("zstd frame holds {n} bytes, more than {max}"));
    }
    decompress(data, n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_round_trip_and_random_is_skipped() {
        let text: Vec<u8> = b"the quick brown fox ".iter().cycle().take(200_000).copied().collect();
        let c = compress(&text, Compression::default()).unwrap();
        assert!(c.len() < text.len() / 10);
        assert_eq!(decompress(&c, text.len()).unwrap(), text);
        assert!(decompress(&c, text.len() - 1).is_err());
        let mut random = vec![0u8; 200_000];
        getrandom::getrandom(&mut random).unwrap();
        assert!(compress(&random, Compression::default()).is_none());
        assert!(compress(&text, Compression::Off).is_none());
        assert_eq!(decompress_frame(&c, text.len()).unwrap(), text);
        assert!(decompress_frame(&c, text.len() - 1).is_err(), "a frame over the bound is refused");
        assert!(decompress_frame(&c[..3], 1 << 20).is_err());
        let mut streamed = Vec::new();
        zstd::stream::copy_encode(&text[..], &mut streamed, 3).unwrap();
        assert!(decompress_frame(&streamed, 1 << 20).is_err(), "a frame without its content size is refused");
    }

    #[test]
    fn the_compressor_check_accepts_only_a_payload_that_gives_back_the_plaintext() {
        let text: Vec<u8> = b"the quick brown fox ".iter().cycle().take(200_000).copied().collect();
        let c = compress(&text, Compression::default()).unwrap();
        assert!(decompresses_to(&c, &text));
        assert!(!decompresses_to(&c, &text[..text.len() - 1]), "more bytes than the plaintext");
        let mut longer = text.clone();
        longer.push(b'x');
        assert!(!decompresses_to(&c, &longer), "fewer bytes than the plaintext");
        let mut other = text.clone();
        other[123_456] ^= 1;
        assert!(!decompresses_to(&c, &other), "one byte differs");
        assert!(!decompresses_to(&c[..c.len() / 2], &text), "a truncated payload");
        // Altered payloads that zstd decodes without complaint, to other bytes of the right length:
        // without a checksum in the frame, only the comparison tells them from the plaintext.
        let varied: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x3f).collect();
        let c = compress(&varied, Compression::default()).unwrap();
        let mut silent = 0;
        for at in (0..c.len()).step_by(7) {
            let mut bad = c.clone();
            bad[at] ^= 0x40;
            if let Ok(out) = decompress(&bad, varied.len()) {
                if out != varied {
                    silent += 1;
                    assert!(!decompresses_to(&bad, &varied), "byte {at} altered");
                }
            }
        }
        assert!(silent > 0, "some alteration decodes silently to other bytes");
        assert!(!decompresses_to(&[], b"x"));
    }

    #[test]
    fn the_sample_test_tells_random_from_compressible_wherever_the_text_lies() {
        let text: Vec<u8> = b"the quick brown fox ".iter().cycle().take(64 * 1024).copied().collect();
        let mut random = vec![0u8; 64 * 1024];
        getrandom::getrandom(&mut random).unwrap();
        assert!(looks_incompressible(&random));
        assert!(!looks_incompressible(&text));
        // Text only at the start: decided by the first sample; only in the middle or at the end:
        // by the three.
        for at in [0, 28 * 1024, 56 * 1024] {
            let mut mixed = random.clone();
            mixed[at..at + 8 * 1024].copy_from_slice(&text[..8 * 1024]);
            assert!(!looks_incompressible(&mixed), "text at {at}");
        }
        assert!(!looks_incompressible(&random[..4 * SAMPLE - 1]), "too short to sample: tried");
    }

    #[test]
    fn parse_settings() {
        assert_eq!("auto".parse::<Compression>(), Ok(Compression::Zstd(DEFAULT_LEVEL)));
        assert_eq!("off".parse::<Compression>(), Ok(Compression::Off));
        assert_eq!("7".parse::<Compression>(), Ok(Compression::Zstd(7)));
        assert!("99".parse::<Compression>().is_err());
    }
}
