//! Content-defined chunking: FastCDC 2020 with a gear table keyed by `chunk_key`
//! (format-spec §3.6). Takes bytes, returns cut points; reads nothing itself except through the
//! `Read` it is handed.

pub use crate::config::{ChunkerParams, ALGORITHM_FASTCDC2020_KEYED_GEAR};
use crate::crypto::{context, Secret};
use fastcdc::v2020::{cut_gear, select_masks, Normalization};
use std::io::{self, Read};

/// A keyed FastCDC chunker.
#[derive(Clone)]
pub struct Chunker {
    params: ChunkerParams,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    mask_s: u64,
    mask_l: u64,
}

/// The keyed gear table: 256 little-endian u64 read from the BLAKE3 XOF of
/// [`context::GEAR`] keyed by `chunk_key`.
pub fn gear_table(chunk_key: &Secret) -> Box<[u64; 256]> {
    let mut h = blake3::Hasher::new_keyed(&chunk_key.0);
    h.update(context::GEAR.as_bytes());
    let mut bytes = [0u8; 2048];
    h.finalize_xof().fill(&mut bytes);
    let mut g = Box::new([0u64; 256]);
    for (i, v) in g.iter_mut().enumerate() {
        *v = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    }
    g
}

impl Chunker {
    /// A chunker for `params` keyed by `chunk_key`. The parameters must be valid.
    pub fn new(params: ChunkerParams, chunk_key: &Secret) -> Result<Self, String> {
        params.validate()?;
        let gear = gear_table(chunk_key);
        let mut gear_ls = Box::new([0u64; 256]);
        for (d, s) in gear_ls.iter_mut().zip(gear.iter()) {
            *d = s << 1;
        }
        let level = match params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        };
        let (mask_s, mask_l) = select_masks(params.avg_size as usize, level);
        Ok(Chunker { params, gear, gear_ls, mask_s, mask_l })
    }

    /// The parameters.
    pub fn params(&self) -> &ChunkerParams {
        &self.params
    }

    /// Length of the chunk that starts `data`. `data` must hold at least `max_size` bytes
    /// unless it is the end of the stream.
    pub fn next_cut(&self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        let (_, len) = cut_gear(
            data,
            self.params.min_size as usize,
            self.params.avg_size as usize,
            self.params.max_size as usize,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear[..],
            &self.gear_ls[..],
        );
        len.clamp(1, data.len())
    }

    /// All cut points of an in-memory buffer, as chunk lengths.
    pub fn cuts(&self, data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let n = self.next_cut(&data[pos..]);
            out.push(n);
            pos += n;
        }
        out
    }

    /// Chunks a reader, yielding owned chunks; memory stays within about 1.5 × `max_size`.
    pub fn stream<R: Read>(&self, reader: R) -> ChunkStream<'_, R> {
        self.stream_with_hint(reader, None)
    }

    /// [`Chunker::stream`] for a source whose size is about known (a file's `st_size`): the
    /// buffer is sized for it, so a 1 KiB file does not cost a `1.5 × max_size` allocation. A
    /// wrong hint costs only speed; the stream grows its buffer as needed.
    pub fn stream_with_hint<R: Read>(&self, reader: R, size_hint: Option<u64>) -> ChunkStream<'_, R> {
        ChunkStream { chunker: self, reader, buf: Vec::new(), start: 0, eof: false, bytes_read: 0, size_hint }
    }
}

/// Iterator over the chunks of a reader. See [`Chunker::stream`].
pub struct ChunkStream<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
    bytes_read: u64,
    size_hint: Option<u64>,
}

impl<R: Read> ChunkStream<'_, R> {
    /// Bytes read from the reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Reads until at least `max_size` bytes are buffered past `start`, or to the end. The
    /// buffer is grown (and zeroed) once per fill, not once per `read`: a pipe hands out 64 KiB
    /// per call, and zeroing megabytes for each of those made stream sources crawl. With a size
    /// hint the first allocation fits the source (plus one byte to see the end).
    fn fill(&mut self) -> io::Result<()> {
        const STEP: usize = 64 * 1024;
        let max = self.chunker.params.max_size as usize;
        if self.start > 0 && self.buf.len() - self.start < max {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.eof || self.buf.len() - self.start >= max {
            return Ok(());
        }
        // Here `start` is 0 and fewer than `max` bytes are buffered.
        let mut filled = self.buf.len();
        // One and a half chunks of the largest size: each byte is moved about twice by the
        // `drain` above (once with `2 × max`), for a quarter less resident memory per stream.
        let mut want = (max + max / 2).max(filled + 4 * STEP);
        if let Some(hint) = self.size_hint {
            let rest = usize::try_from(hint.saturating_sub(self.bytes_read)).unwrap_or(usize::MAX);
            // Exactly the rest and one byte to see the end: a small file must not cost a zeroed
            // 64 KiB buffer (a million of them spent seconds in memset). A source that grew
            // past its hint is grown below.
            want = want.min(filled.saturating_add(rest).saturating_add(1).max(filled + 1));
        }
        self.buf.resize(want, 0);
        let result = loop {
            if filled - self.start >= max {
                break Ok(());
            }
            if filled == self.buf.len() {
                // The hint was short (the source grew): grow geometrically, never past 1.5 × max.
                let grown = (self.buf.len() * 2).clamp(filled + STEP, (max + max / 2).max(filled + STEP));
                self.buf.resize(grown, 0);
            }
            match self.reader.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break Ok(());
                }
                Ok(n) => {
                    filled += n;
                    self.bytes_read += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.buf.truncate(filled);
        result
    }
}

impl<R: Read> Iterator for ChunkStream<'_, R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.fill() {
            return Some(Err(e));
        }
        let avail = &self.buf[self.start..];
        if avail.is_empty() {
            return None;
        }
        let n = self.chunker.next_cut(avail);
        if self.eof && self.start == 0 && n == avail.len() {
            // The whole rest of the source in one chunk (a small file): hand over the buffer.
            return Some(Ok(std::mem::take(&mut self.buf)));
        }
        let chunk = avail[..n].to_vec();
        self.start += n;
        Some(Ok(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn size_hints_never_change_the_chunks() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([7; 32])).unwrap();
        let data = pseudo_random(9 * 1024 * 1024 + 123, 3);
        let plain: Vec<Vec<u8>> = c.stream(&data[..]).map(|r| r.unwrap()).collect();
        for hint in [0u64, 1, 1000, 64 * 1024, 5 << 20, data.len() as u64, 1 << 40] {
            let hinted: Vec<Vec<u8>> = c.stream_with_hint(&data[..], Some(hint)).map(|r| r.unwrap()).collect();
            assert_eq!(hinted, plain, "hint {hint}");
        }
        let small = b"a small file";
        let chunks: Vec<Vec<u8>> =
            c.stream_with_hint(&small[..], Some(small.len() as u64)).map(|r| r.unwrap()).collect();
        assert_eq!(chunks, vec![small.to_vec()]);
    }

    #[test]
    fn stream_and_slice_agree() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([5; 32])).unwrap();
        let data = pseudo_random(9 * 1024 * 1024 + 77, 1);
        let cuts = c.cuts(&data);
        let streamed: Vec<usize> = c.stream(&data[..]).map(|r| r.unwrap().len()).collect();
        assert_eq!(cuts, streamed);
        assert_eq!(cuts.iter().sum::<usize>(), data.len());
        for &n in &cuts[..cuts.len() - 1] {
            assert!((256 * 1024..=4 * 1024 * 1024).contains(&n));
        }
    }

    #[test]
    fn the_key_moves_cut_points() {
        let data = pseudo_random(8 * 1024 * 1024, 2);
        let a = Chunker::new(ChunkerParams::default(), &Secret([1; 32])).unwrap();
        let b = Chunker::new(ChunkerParams::default(), &Secret([2; 32])).unwrap();
        assert_ne!(a.cuts(&data), b.cuts(&data));
    }

    /// Hands out at most `step` bytes per `read`, like a pipe.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.step).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_give_the_same_chunks() {
        let params = ChunkerParams { min_size: 1024, avg_size: 4096, max_size: 16384, ..ChunkerParams::default() };
        let c = Chunker::new(params, &Secret([5; 32])).unwrap();
        let data = pseudo_random(300_000, 3);
        for step in [1, 7, 4096, 65536, 1 << 20] {
            let mut stream = c.stream(Trickle { data: &data, step });
            let streamed: Vec<usize> = stream.by_ref().map(|r| r.unwrap().len()).collect();
            assert_eq!(stream.bytes_read(), data.len() as u64);
            assert_eq!(streamed, c.cuts(&data), "reads of {step} bytes");
        }
    }

    #[test]
    fn a_stream_buffers_at_most_one_and_a_half_maximum_chunks() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([6; 32])).unwrap();
        let max = ChunkerParams::default().max_size as usize;
        let data = pseudo_random(12 * 1024 * 1024 + 5, 4);
        let mut stream = c.stream(Trickle { data: &data, step: 65536 });
        let mut lens = Vec::new();
        while let Some(chunk) = stream.next() {
            lens.push(chunk.unwrap().len());
            assert!(stream.buf.capacity() <= max + max / 2, "buffer of {} bytes", stream.buf.capacity());
        }
        assert_eq!(lens, c.cuts(&data));
    }

    #[test]
    fn a_small_file_is_read_into_a_buffer_of_its_size_and_handed_over_whole() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([6; 32])).unwrap();
        let data = pseudo_random(70, 5);
        let mut stream = c.stream_with_hint(&data[..], Some(70));
        stream.fill().unwrap();
        // 64 KiB (zeroed) for any hinted file before.
        assert_eq!(stream.buf.capacity(), 71);
        let chunk = stream.next().unwrap().unwrap();
        assert_eq!(chunk, data);
        assert_eq!(chunk.capacity(), 71, "the buffer itself, not a copy");
        assert!(stream.next().is_none());
        assert_eq!(stream.bytes_read(), 70);
    }

    #[test]
    fn empty_stream_has_no_chunks() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([5; 32])).unwrap();
        assert_eq!(c.stream(&b""[..]).count(), 0);
    }
}
