//! Layer 2, bytes in and bytes out: keys and the AEAD framing, compression, chunking, blob
//! framing, and the sealed or MACed encoding of every stored object (one envelope for all of
//! them). Uses only the format layer; does no storage I/O.

pub mod attribution;
pub mod blob;
pub mod chunker;
pub mod compress;
pub mod crypto;
pub mod envelope;
pub mod ledger;
pub mod object;
pub mod packer;
pub mod sign;
