//! Floor 7: actors and their trees: serving an actor ([`actor`]), discovery through the
//! registrar ([`discovery`]), spawning children ([`spawn`]), supervising them ([`nursery`]), and
//! running an actor's services ([`services`]).

pub(crate) mod actor;
pub mod discovery;
pub mod nursery;
pub(crate) mod services;
pub(crate) mod spawn;
