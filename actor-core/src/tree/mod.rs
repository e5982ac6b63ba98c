//! Floor 7: actors and their trees: serving an actor ([`actor`]), discovery through the
//! registrar ([`discovery`]), spawning children ([`spawn`]) and supervising them ([`nursery`]).

pub(crate) mod actor;
pub mod discovery;
pub mod nursery;
pub(crate) mod spawn;
