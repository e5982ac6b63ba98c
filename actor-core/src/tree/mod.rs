//! Floor 7: actors and their trees: serving an actor ([`actor`]), discovery through the
//! registrar ([`discovery`] for lookups, `registrar` for the registrar's side, `registration`
//! for staying registered), spawning children ([`spawn`]), supervising them ([`nursery`]), and
//! running an actor's services ([`services`]).

pub(crate) mod actor;
pub mod discovery;
pub(crate) mod hosts;
pub mod nursery;
pub(crate) mod registrar;
pub(crate) mod registration;
pub(crate) mod services;
pub(crate) mod spawn;
