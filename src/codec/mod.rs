//! Layer 2, bytes in and bytes out: keys and the AEAD framing, compression, chunking, blob
//! framing.

pub mod blob;
pub mod chunker;
pub mod compress;
pub mod crypto;
