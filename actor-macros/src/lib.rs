//! Procedural macros of the `actor` runtime. Use them through the `actor` crate
//! (`#[actor::remote]`); the generated code names only `::actor::...` paths.
//!
//! `#[remote]` turns a free function into a remote function other actors can call by
//! `(namespace, name)`. Its kind follows from its signature:
//!
//! - `async fn add(a: i64, b: i64) -> i64`: request/response (`asyncfunc`);
//! - `fn count(n: u64) -> impl Stream<Item = u64>`: one-way stream (`asyncgen`);
//! - `async fn echo(ctx: actor::Context, start: i64) -> actor::Result<String>`: context
//!   (bidirectional), recognised by its first parameter, or forced with `#[remote(context)]`.
//!
//! Beside the untouched function it generates a braced struct of the same name whose fields
//! are the function's parameters (the typed call: `portal.run(add { a: 1, b: 2 })`), the
//! matching `RemoteFn` / `RemoteStreamFn` / `RemoteContextFn` impl, and an `inventory`
//! registration of a handler that decodes the call's kwargs into that struct and runs the
//! function.
//!
//! The work is split in three steps: `model` parses and checks the annotated function into a
//! small model (every misuse is a compile error at the user's span), `types` holds the type
//! inspections it needs, and `emit` turns the model into code.

mod emit;
mod entry;
mod model;
mod service;
mod types;

use proc_macro::TokenStream;

/// Makes a free function callable from other actors.
///
/// Arguments: `ns = "name"` registers the function in that namespace instead of its module
/// path (`module_path!()`); `context` makes it a context function even when its first
/// parameter's type is not spelled `Context` (e.g. an alias of `actor::Context`).
///
/// ```ignore
/// #[actor::remote]
/// async fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// #[actor::remote(ns = "demo")]
/// fn count(n: u64) -> impl futures::Stream<Item = u64> {
///     futures::stream::iter(0..n)
/// }
///
/// #[actor::remote]
/// async fn echo(ctx: actor::Context, start: i64) -> actor::Result<String> {
///     ctx.started(start).await?;
///     Ok("done".into())
/// }
/// ```
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the function as written, so a misuse reports one error and nothing that
        // follows from the function being missing.
        Err(error) => {
            let mut tokens = item;
            tokens.extend(error.to_compile_error());
            tokens.into()
        }
    }
}

fn expand(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let args = model::Args::parse(attr)?;
    let function = model::parse_fn(item)?;
    let remote = model::Remote::new(args, &function)?;
    Ok(emit::remote(&function, &remote))
}

/// Declares a service: background work started by every actor that enables its namespace
/// (`ns = "..."`, default: the module path). `async fn name([svc: actor::Service]) -> R` runs
/// as a task of the actor; `#[service(blocking)] fn name([svc: actor::Service]) -> R` on a
/// thread of its own. Any end of a service while its actor runs (a return, an `Err`, a panic)
/// stops the actor with an error naming the service.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match service::expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens = item;
            tokens.extend(error.to_compile_error());
            tokens.into()
        }
    }
}

/// Makes `async fn main` the root actor of the program, and makes the same binary able to run
/// as a child actor when the runtime launches it that way (decided before any user code runs).
///
/// The body runs as a task of its own when it can be one (its future `Send`, its output
/// `Send`): the answers to its calls then resume it without the extra I/O-driver poll tokio
/// makes before it resumes a `block_on` future. Otherwise it runs in place, as `block_on`'s
/// future. The same holds for [`macro@test`].
///
/// ```ignore
/// #[actor::main]
/// async fn main() -> actor::Result<()> {
///     let nursery = actor::open_nursery().await?;
///     nursery.close().await
/// }
/// ```
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry_point(entry::Entry::Main, attr, item)
}

/// Makes an `async fn` test a root actor (with its own registrar) that can spawn children from
/// the test binary itself.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    entry_point(entry::Entry::Test, attr, item)
}

fn entry_point(kind: entry::Entry, attr: TokenStream, item: TokenStream) -> TokenStream {
    match entry::expand(kind, attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}
