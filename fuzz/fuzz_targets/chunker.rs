//! The chunker (format-spec §3.6). Input: `7 parameter bytes ‖ data`. First the raw bytes as
//! `ChunkerParams` (what a config carries) through `validate` and, when valid, `Chunker::new`;
//! then parameters forced into the valid range chunk the data, in memory (`cuts`) and streamed
//! through a reader that returns short reads, and both must give the same chunks, which cover the
//! data and respect the size limits.
#![no_main]

use cairn::chunker::{Chunker, ChunkerParams, ALGORITHM_FASTCDC2020_KEYED_GEAR};
use cairn::crypto::Secret;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(self.step).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn u16_at(b: &[u8], i: usize) -> u32 {
    u16::from_le_bytes([b[i], b[i + 1]]) as u32
}

fuzz_target!(|input: &[u8]| {
    let key = Secret([0x33; 32]);
    if input.len() >= 17 {
        let u = |i: usize| u32::from_le_bytes(input[i..i + 4].try_into().unwrap());
        let raw = ChunkerParams {
            algorithm: u(0),
            min_size: u(4),
            avg_size: u(8),
            max_size: u(12),
            normalization: input[16],
        };
        if raw.validate().is_ok() {
            Chunker::new(raw, &key).expect("valid parameters build a chunker");
        } else {
            assert!(Chunker::new(raw, &key).is_err());
        }
    }
    if input.len() < 7 {
        return;
    }
    let (p, data) = input.split_at(7);
    // Small sizes, so that short inputs hold many chunks.
    let min_size = 64 + 2 * (u16_at(p, 1) % 512);
    let avg_size = min_size.max(256) + 2 * (u16_at(p, 3) % 2048);
    let max_size = avg_size + 2 * (u16_at(p, 5) % 4096);
    let params = ChunkerParams {
        algorithm: ALGORITHM_FASTCDC2020_KEYED_GEAR,
        min_size,
        avg_size,
        max_size,
        normalization: p[0] % 4,
    };
    params.validate().expect("forced parameters are valid");
    let c = Chunker::new(params, &key).unwrap();
    let cuts = c.cuts(data);
    assert_eq!(cuts.iter().sum::<usize>(), data.len(), "chunks do not cover the data");
    for (i, &n) in cuts.iter().enumerate() {
        assert!(n >= 1 && n <= max_size as usize, "chunk {i} of {n} bytes with {params:?}");
        if i + 1 < cuts.len() {
            assert!(n >= min_size as usize, "inner chunk {i} of {n} bytes with {params:?}");
        }
    }
    let step = 1 + (p[0] as usize >> 2) * 97;
    let streamed: Vec<usize> = c.stream(Trickle { data, step }).map(|r| r.unwrap().len()).collect();
    assert_eq!(cuts, streamed, "streamed chunks differ from in-memory chunks");
});
