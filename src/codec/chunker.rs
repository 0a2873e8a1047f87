//! Content-defined chunking: FastCDC 2020 with a gear table keyed by `chunk_key`
//! (format-spec §3.6). Takes bytes, returns cut points; reads nothing itself except through the
//! `Read` it is handed.

pub use crate::config::{ChunkerParams, ALGORITHM_FASTCDC2020_KEYED_GEAR};
use crate::crypto::{context, Secret};
use bytes::{Bytes, BytesMut};
use fastcdc::v2020::{cut_gear, select_masks, Normalization};
use std::io::{self, Read};

/// The bytes of history the gear hash depends on: a byte's term leaves the 64-bit hash 64 bytes
/// later.
const GEAR_WINDOW: usize = 64;

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

    /// Length of the chunk that starts `data`. A length shorter than `data` is a cut whatever
    /// bytes follow (a cut depends only on the bytes before it, and one at `max_size` on nothing
    /// else); `data.len()` itself is the chunk's end only at the end of the stream, and otherwise
    /// means that `data` holds no cut yet.
    pub fn next_cut(&self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        let p = &self.params;
        self.cut(data, p.min_size as usize, p.avg_size as usize, p.max_size as usize).clamp(1, data.len())
    }

    /// FastCDC's cut of `data` with these sizes and this chunker's table and masks.
    fn cut(&self, data: &[u8], min: usize, avg: usize, max: usize) -> usize {
        let (mask_s, mask_l) = (self.mask_s, self.mask_l);
        cut_gear(data, min, avg, max, mask_s, mask_l, mask_s << 1, mask_l << 1, &self.gear[..], &self.gear_ls[..]).1
    }

    /// [`Chunker::next_cut`] of `data` when [`Chunker::next_cut`] of its first `scanned` bytes
    /// found no cut (returned `scanned`): the same length, without searching those bytes again.
    ///
    /// The gear hash at a position depends only on the [`GEAR_WINDOW`] bytes up to it (each byte's
    /// term is shifted left once per later byte, and out of the 64 bits after 64), so the search
    /// can start cold [`GEAR_WINDOW`] bytes before `scanned` (at an even offset, keeping the
    /// two-byte steps and the positions where the masks change) and agree with the full search
    /// from there on. A hit inside those first bytes comes from the cold hash (the full search
    /// found none there): then `data` is searched in full.
    pub fn next_cut_resumed(&self, data: &[u8], scanned: usize) -> usize {
        let (min, avg, max) =
            (self.params.min_size as usize, self.params.avg_size as usize, self.params.max_size as usize);
        let from = scanned.saturating_sub(GEAR_WINDOW) & !1;
        if from < min || from >= max || scanned >= data.len() {
            return self.next_cut(data);
        }
        let len = self.cut(&data[from..], 0, avg.saturating_sub(from), max - from);
        if len < GEAR_WINDOW {
            return self.next_cut(data);
        }
        (from + len).clamp(1, data.len())
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

    /// Chunks a reader. Chunks are handed out as slices of the buffer they were read into (no
    /// copy); the stream reads into buffers of about 1.5 × `max_size`, and a buffer lives as long
    /// as a chunk cut from it.
    pub fn stream<R: Read>(&self, reader: R) -> ChunkStream<'_, R> {
        self.stream_with_hint(reader, None)
    }

    /// [`Chunker::stream`] for a source whose size is about known (a file's `st_size`): the
    /// buffer is sized for it, so a 1 KiB file does not cost a `1.5 × max_size` allocation. A
    /// wrong hint costs only speed; the stream grows its buffer as needed.
    pub fn stream_with_hint<R: Read>(&self, reader: R, size_hint: Option<u64>) -> ChunkStream<'_, R> {
        ChunkStream { chunker: self, reader, buf: BytesMut::new(), scanned: 0, eof: false, bytes_read: 0, size_hint }
    }
}

/// Iterator over the chunks of a reader. See [`Chunker::stream`].
pub struct ChunkStream<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    /// What was read and not handed out yet, at the end of the buffer that earlier chunks of it
    /// were split from; its spare capacity is the room left in that buffer.
    buf: BytesMut,
    /// The bytes at the start of `buf` that hold no cut (searched before).
    scanned: usize,
    eof: bool,
    bytes_read: u64,
    size_hint: Option<u64>,
}

/// The most a stream asks of its reader at once: it looks for a cut after each read, so chunks go
/// out as soon as they are read, not in bursts of a whole buffer.
const READ_STEP: usize = 256 * 1024;

impl<R: Read> ChunkStream<'_, R> {
    /// Bytes read from the reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Reads once (at most [`READ_STEP`] bytes) into the room left in the buffer. When there is
    /// none, the bytes not handed out yet (the tail after the last cut: less than a chunk) move
    /// to a new buffer of about 1.5 × `max_size`; with a size hint the buffer fits the rest of
    /// the source and one byte to see its end, and past the hint (the source grew) it grows
    /// geometrically.
    fn read_more(&mut self) -> io::Result<()> {
        const STEP: usize = 64 * 1024;
        let len = self.buf.len();
        if self.buf.capacity() == len {
            let max = self.chunker.params.max_size as usize;
            let mut want = (max + max / 2).max(len + STEP);
            if let Some(hint) = self.size_hint {
                let left = usize::try_from(hint.saturating_sub(self.bytes_read)).unwrap_or(usize::MAX);
                want = if left > 0 {
                    want.min(len.saturating_add(left).saturating_add(1))
                } else {
                    (len * 2).clamp(len + STEP, want)
                };
            }
            // A new buffer, never `reserve`: on a buffer no chunk holds any more, `BytesMut`
            // may double it rather than move the tail to its start.
            let mut next = BytesMut::with_capacity(want);
            next.extend_from_slice(&self.buf);
            self.buf = next;
        }
        let room = (self.buf.capacity() - len).min(READ_STEP);
        self.buf.resize(len + room, 0);
        let result = loop {
            match self.reader.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        self.bytes_read += n as u64;
        self.eof |= n == 0 && result.is_ok();
        result.map(|_| ())
    }
}

impl<R: Read> Iterator for ChunkStream<'_, R> {
    type Item = io::Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if !self.buf.is_empty() {
                let n = self.chunker.next_cut_resumed(&self.buf, self.scanned);
                if n < self.buf.len() || self.eof {
                    self.scanned = 0;
                    return Some(Ok(self.buf.split_to(n).freeze()));
                }
                self.scanned = self.buf.len();
            } else if self.eof {
                return None;
            }
            // No cut in what is buffered yet (or nothing is): read on.
            if let Err(e) = self.read_more() {
                return Some(Err(e));
            }
        }
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
        let plain: Vec<Bytes> = c.stream(&data[..]).map(|r| r.unwrap()).collect();
        for hint in [0u64, 1, 1000, 64 * 1024, 5 << 20, data.len() as u64, 1 << 40] {
            let hinted: Vec<Bytes> = c.stream_with_hint(&data[..], Some(hint)).map(|r| r.unwrap()).collect();
            assert_eq!(hinted, plain, "hint {hint}");
        }
        let small = b"a small file";
        let chunks: Vec<Bytes> = c.stream_with_hint(&small[..], Some(small.len() as u64)).map(|r| r.unwrap()).collect();
        assert_eq!(chunks, vec![Bytes::from_static(small)]);
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

    /// Counts the reader's calls.
    struct Counting<'a> {
        data: &'a [u8],
        reads: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = self.data.len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_stream_buffers_at_most_one_and_a_half_maximum_chunks_and_hands_out_slices_of_them() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([6; 32])).unwrap();
        let max = ChunkerParams::default().max_size as usize;
        let data = pseudo_random(12 * 1024 * 1024 + 5, 4);
        let mut stream = c.stream(Trickle { data: &data, step: 65536 });
        let mut lens = Vec::new();
        let mut at = 0;
        while let Some(chunk) = stream.next() {
            let chunk = chunk.unwrap();
            assert_eq!(chunk[..], data[at..at + chunk.len()]);
            at += chunk.len();
            lens.push(chunk.len());
            assert!(stream.buf.capacity() <= max + max / 2, "buffer of {} bytes", stream.buf.capacity());
            // Not a copy: the chunk was split off the stream's buffer, right before what is left.
            assert_eq!(chunk.as_ptr_range().end, stream.buf.as_ptr());
        }
        assert_eq!(lens, c.cuts(&data));
    }

    #[test]
    fn a_small_file_is_read_into_a_buffer_of_its_size_and_handed_over_whole() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([6; 32])).unwrap();
        let data = pseudo_random(70, 5);
        let mut reader = Counting { data: &data, reads: 0 };
        let mut stream = c.stream_with_hint(&mut reader, Some(70));
        let chunk = stream.next().unwrap().unwrap();
        assert_eq!(chunk, data);
        assert_eq!(chunk.as_ptr_range().end, stream.buf.as_ptr(), "the buffer itself, not a copy");
        assert!(stream.next().is_none());
        assert_eq!(stream.bytes_read(), 70);
        drop(stream);
        // One read of 70 bytes into a buffer of 71, one that finds the end.
        assert_eq!(reader.reads, 2);
    }

    #[test]
    fn a_source_far_longer_or_shorter_than_its_hint_is_read_in_bounded_buffers() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([6; 32])).unwrap();
        let data = pseudo_random(10 * 1024 * 1024, 6);
        let max = ChunkerParams::default().max_size as usize;
        // A size a local user lies about (format-spec §3.6 cut points, and a bounded buffer, either way).
        for hint in [100, 1 << 40] {
            let mut reader = Counting { data: &data, reads: 0 };
            let mut stream = c.stream_with_hint(&mut reader, Some(hint));
            let mut lens = Vec::new();
            while let Some(chunk) = stream.next() {
                lens.push(chunk.unwrap().len());
                assert!(stream.buf.capacity() <= max + max / 2, "hint {hint}: buffer of {}", stream.buf.capacity());
            }
            drop(stream);
            assert_eq!(lens, c.cuts(&data), "hint {hint}");
            assert!(reader.reads < 200, "hint {hint}: {} reads for 10 MiB", reader.reads);
        }
    }

    /// Chunker sizes small enough for many chunks in a few hundred KiB: `min_size`, average
    /// `k` KiB, maximum `4k` KiB.
    fn small_params(min_size: u32, k: u32, normalization: u8) -> ChunkerParams {
        ChunkerParams { min_size, avg_size: k * 1024, max_size: k * 4096, normalization, ..ChunkerParams::default() }
    }

    proptest::proptest! {
        /// A search resumed where an earlier one of a prefix found no cut finds the cut the full
        /// search finds, at every such prefix (cold-hash hits near the resume point included).
        #[test]
        fn a_resumed_search_cuts_where_the_full_search_does(
            seed in 0u64..10_000,
            len in 1usize..40_000,
            min in 1u32..6,
            normalization in 0u8..4,
        ) {
            let params = small_params(min * 128, min, normalization);
            let c = Chunker::new(params, &Secret([seed as u8; 32])).unwrap();
            let data = pseudo_random(len, seed);
            let full = c.next_cut(&data);
            for scanned in 1..=len.min(params.max_size as usize) {
                if c.next_cut(&data[..scanned]) == scanned {
                    proptest::prop_assert_eq!(c.next_cut_resumed(&data, scanned), full, "resumed at {}", scanned);
                }
            }
        }

        /// Whatever the reads hand out and whatever the hint says, a stream cuts where the
        /// in-memory chunker does.
        #[test]
        fn streams_cut_where_memory_does(
            seed in 0u64..1000,
            len in 0usize..200_000,
            step in 1usize..70_000,
            hint in proptest::option::of(0u64..300_000),
            min in 1u32..8,
        ) {
            let params = small_params(min * 256, min, 1);
            let c = Chunker::new(params, &Secret([9; 32])).unwrap();
            let data = pseudo_random(len, seed);
            let mut stream = c.stream_with_hint(Trickle { data: &data, step }, hint);
            let mut joined = Vec::with_capacity(len);
            let mut lens = Vec::new();
            for chunk in stream.by_ref() {
                let chunk = chunk.unwrap();
                joined.extend_from_slice(&chunk);
                lens.push(chunk.len());
            }
            proptest::prop_assert_eq!(stream.bytes_read(), len as u64);
            proptest::prop_assert_eq!(lens, c.cuts(&data));
            proptest::prop_assert!(joined == data);
        }
    }

    #[test]
    fn empty_stream_has_no_chunks() {
        let c = Chunker::new(ChunkerParams::default(), &Secret([5; 32])).unwrap();
        assert_eq!(c.stream(&b""[..]).count(), 0);
    }
}
