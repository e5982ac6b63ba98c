//! The few msgpack primitives the message layer needs, written for this job: `read.rs` is a
//! cursor that reads headers and strings and *skips* whole values without building them (so
//! payloads can be sliced out of a frame untouched); `write.rs` writes headers and scalars,
//! with `rmp::encode` where that measured as fast as hand-written code (the figures are at the
//! top of `write.rs`).

mod read;
mod write;

pub use read::MAX_NESTING;
pub(crate) use read::{Cursor, check_nesting, kind_name};
pub(crate) use write::{
    put_array_len, put_bin_len, put_bool, put_map_len, put_nil, put_str, put_uint, put_value,
};
