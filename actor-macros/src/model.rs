//! Parsing and checking: from the attribute's arguments and the annotated function to a small
//! model of what to generate. Every misuse is a compile error at the user's span; nothing here
//! produces code.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{
    Attribute, FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Signature, Type, Visibility,
    ext::IdentExt, parse::Parser, spanned::Spanned,
};

use crate::types::{self, Unowned};

/// The error for a parameter or item type that borrows.
const NOT_OWNED: &str =
    "arguments of a remote function must be owned types (they are decoded from the call's message)";

/// The attribute's arguments: `#[remote]`, `#[remote(ns = "demo")]`, `#[remote(context)]`.
#[derive(Default)]
pub(crate) struct Args {
    /// The namespace given with `ns = "..."`; the module path when absent.
    pub(crate) ns: Option<LitStr>,
    /// Whether `context` was written.
    pub(crate) context: bool,
    /// The type of a context's `started` value, given with `started = Type`.
    pub(crate) started: Option<Type>,
    /// Whether `blocking` was written: a plain `fn` run on the actor's thread runner.
    pub(crate) blocking: bool,
}

impl Args {
    /// Parses the attribute's arguments.
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut args = Self::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("ns") {
                if args.ns.is_some() {
                    return Err(meta.error("`ns` is given twice"));
                }
                args.ns = Some(parse_ns(&meta)?);
                Ok(())
            } else if meta.path.is_ident("context") {
                args.context = parse_flag(&meta, args.context, "context", "remote")?;
                Ok(())
            } else if meta.path.is_ident("blocking") {
                args.blocking = parse_flag(&meta, args.blocking, "blocking", "remote")?;
                Ok(())
            } else if meta.path.is_ident("started") {
                if args.started.is_some() {
                    return Err(meta.error("`started` is given twice"));
                }
                let ty: Type = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected the type of the context's `started` value: `started = i64`",
                    )
                })?;
                args.started = Some(ty);
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown argument `{}` of `#[remote]`: expected `ns = \"...\"`, `context`, \
                     `blocking` or `started = Type`",
                    meta.path.to_token_stream()
                )))
            }
        });
        parser.parse2(attr)?;
        Ok(args)
    }
}

/// A flag argument such as `blocking` (always `true`), refused when given twice or with a
/// value (shared by `#[remote]` and `#[service]`; `attribute` names the one being parsed).
pub(crate) fn parse_flag(
    meta: &syn::meta::ParseNestedMeta<'_>,
    already: bool,
    flag: &str,
    attribute: &str,
) -> syn::Result<bool> {
    if already {
        return Err(meta.error(format!("`{flag}` is given twice")));
    }
    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        return Err(meta.error(format!(
            "`{flag}` takes no value: write `#[{attribute}({flag})]`"
        )));
    }
    Ok(true)
}

/// The value of an attribute's `ns = "..."`: a non-empty string (shared by `#[remote]` and
/// `#[service]`).
pub(crate) fn parse_ns(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let ns: LitStr = meta
        .value()?
        .parse()
        .map_err(|e| syn::Error::new(e.span(), "expected a string: `ns = \"my.namespace\"`"))?;
    if ns.value().is_empty() {
        return Err(syn::Error::new_spanned(
            &ns,
            "the namespace must not be empty",
        ));
    }
    Ok(ns)
}

/// Parses the annotated item, which must be a function.
pub(crate) fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<syn::Item>(item)? {
        syn::Item::Fn(function) => Ok(function),
        other => Err(syn::Error::new_spanned(
            other,
            "`#[remote]` goes on a free function: `async fn name(args) -> T`",
        )),
    }
}

/// A remote function, checked: everything the code generation needs.
pub(crate) struct Remote {
    /// The function's name; the generated struct has the same.
    pub(crate) ident: Ident,
    /// The name callers use on the wire (`r#type` is `type`).
    pub(crate) name: String,
    /// The function's visibility, given to the struct and its fields.
    pub(crate) vis: Visibility,
    /// The namespace given to the attribute, if any.
    pub(crate) ns: Option<LitStr>,
    /// The function's `#[cfg]` attributes, repeated on everything generated.
    pub(crate) cfgs: Vec<Attribute>,
    /// The parameters that travel in the call's kwargs (all but the context).
    pub(crate) params: Vec<Param>,
    /// What kind of remote function it is.
    pub(crate) kind: Kind,
    /// A plain `fn` run on the actor's thread runner (`blocking`).
    pub(crate) blocking: bool,
}

/// A parameter decoded from the call's kwargs.
pub(crate) struct Param {
    /// Its name (a field of the generated struct).
    pub(crate) ident: Ident,
    /// Its type, with the user's spans.
    pub(crate) ty: Type,
}

/// The kinds of remote function, with what each one produces.
pub(crate) enum Kind {
    /// `async fn` (`asyncfunc`): its result.
    Func(Output),
    /// `fn -> impl Stream` (`asyncgen`): its items.
    Stream(Output),
    /// `async fn(ctx: Context, ..)` (`context`): its final result, where the context
    /// parameter's type is (a type mismatch there is reported at it), and the type of its
    /// `started` value (`actor::Value` unless given).
    Context(Output, Span, Option<Box<Type>>),
}

/// What a function returns or a stream yields, as the caller decodes it.
pub(crate) struct Output {
    /// The value's type: the `Ok` type of a `Result`-like type, `()` for no return type.
    pub(crate) ty: Type,
    /// Whether the value comes as a `Result` whose `Err` becomes the call's error.
    pub(crate) fallible: bool,
    /// Where errors about encoding the value point.
    pub(crate) span: Span,
}

impl Remote {
    /// Checks the function and builds its model.
    pub(crate) fn new(args: Args, function: &ItemFn) -> syn::Result<Self> {
        let sig = &function.sig;
        check_header(sig)?;
        let (context, params) = params(sig, args.context)?;
        let mut kind = if args.blocking {
            blocking_kind(sig, context)?
        } else {
            kind(sig, context)?
        };
        if let Some(started) = args.started {
            match &mut kind {
                Kind::Context(_, _, slot) => *slot = Some(Box::new(started)),
                _ => {
                    return Err(syn::Error::new_spanned(
                        started,
                        "`started` is the type of a context's first value: only a context \
                         function (`async fn name(ctx: actor::Context, ..)`) has one",
                    ));
                }
            }
        }
        Ok(Self {
            ident: sig.ident.clone(),
            name: sig.ident.unraw().to_string(),
            vis: function.vis.clone(),
            ns: args.ns,
            cfgs: function
                .attrs
                .iter()
                .filter(|attr| attr.path().is_ident("cfg"))
                .cloned()
                .collect(),
            params,
            kind,
            blocking: args.blocking,
        })
    }
}

/// Refuses what a free, non-generic function called by name cannot have.
fn check_header(sig: &Signature) -> syn::Result<()> {
    if let Some(receiver) = sig.receiver() {
        return Err(syn::Error::new_spanned(
            receiver,
            "remote functions cannot take `self`: they are free functions, called by name from \
             other actors; move this one out of the `impl` block",
        ));
    }
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new_spanned(
            constness,
            "a remote function cannot be `const`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            unsafety,
            "a remote function cannot be `unsafe`: its callers are other processes",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            "a remote function cannot have an ABI",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "a remote function cannot be variadic",
        ));
    }
    let generics = &sig.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        let only_lifetimes = generics.where_clause.is_none()
            && generics
                .params
                .iter()
                .all(|param| matches!(param, syn::GenericParam::Lifetime(_)));
        let message = if only_lifetimes {
            NOT_OWNED
        } else {
            "a remote function cannot be generic: its arguments are decoded from the call's \
             message and its result is decoded by the caller, so their types must be concrete"
        };
        return Err(match &generics.where_clause {
            Some(where_clause) if generics.params.is_empty() => {
                syn::Error::new_spanned(where_clause, message)
            }
            _ => syn::Error::new_spanned(generics, message),
        });
    }
    Ok(())
}

/// The parameters, split into whether the function takes a context and the kwargs.
fn params(sig: &Signature, forced_context: bool) -> syn::Result<(Option<Span>, Vec<Param>)> {
    let mut typed = sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(typed) => Some(typed),
        FnArg::Receiver(_) => None,
    });
    let first_is_context = sig.inputs.first().is_some_and(|arg| match arg {
        FnArg::Typed(typed) => is_context(&typed.ty),
        FnArg::Receiver(_) => false,
    });
    let mut context = None;
    if first_is_context || forced_context {
        let Some(ctx) = typed.next() else {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                "a context function takes `actor::Context` as its first parameter: \
                 `async fn name(ctx: actor::Context, ...)`",
            ));
        };
        plain_name(&ctx.pat)?;
        if let Type::Reference(reference) = types::strip(&ctx.ty) {
            return Err(syn::Error::new_spanned(
                reference,
                "a context function takes its context by value: `ctx: actor::Context`",
            ));
        }
        context = Some(ctx.ty.span());
    }
    let mut params = Vec::new();
    for arg in typed {
        let ident = plain_name(&arg.pat)?;
        if is_context(&arg.ty) {
            return Err(syn::Error::new_spanned(
                &arg.ty,
                "the `Context` parameter must come first: `async fn name(ctx: actor::Context, \
                 ...)`",
            ));
        }
        if let Some(unowned) = types::find_unowned(&arg.ty) {
            return Err(unowned_error(unowned, NOT_OWNED));
        }
        params.push(Param {
            ident,
            ty: (*arg.ty).clone(),
        });
    }
    Ok((context, params))
}

/// Whether a parameter's type is (or is spelled like) `actor::Context`, by value or borrowed.
fn is_context(ty: &Type) -> bool {
    match types::strip(ty) {
        Type::Reference(reference) => types::is_named(&reference.elem, "Context"),
        ty => types::is_named(ty, "Context"),
    }
}

/// The name a parameter binds: only `name` or `mut name`, which becomes a field.
fn plain_name(pat: &Pat) -> syn::Result<Ident> {
    match pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
            Ok(ident.ident.clone())
        }
        _ => Err(syn::Error::new_spanned(
            pat,
            "parameters of a remote function must be plain names (`name: Type`): each one is a \
             named argument of the call",
        )),
    }
}

fn unowned_error(unowned: Unowned, borrow_message: &str) -> syn::Error {
    match unowned {
        Unowned::Borrow(tokens) => syn::Error::new_spanned(tokens, borrow_message),
        Unowned::ImplTrait(tokens) => syn::Error::new_spanned(
            tokens,
            "`impl Trait` cannot cross a process boundary: name a concrete type",
        ),
    }
}

/// The function's kind, from its asyncness, its return type and whether it takes a context.
fn kind(sig: &Signature, context: Option<Span>) -> syn::Result<Kind> {
    let name = &sig.ident;
    let fn_token = &sig.fn_token;
    if let Some(item) = types::stream_item(&sig.output) {
        let item = item?;
        if let Some(asyncness) = &sig.asyncness {
            return Err(syn::Error::new_spanned(
                asyncness,
                "a stream function must not be `async`: remove `async` and return the stream \
                 (`fn name(..) -> impl Stream<Item = T>`); do the async work inside the stream",
            ));
        }
        if context.is_some() {
            return Err(syn::Error::new_spanned(
                quote!(#fn_token #name),
                "a context function must be `async fn`; it streams through `ctx.open_stream()`",
            ));
        }
        // Stream errors (not `Send`, items not `Serialize`) point at the `impl Stream`.
        let span = match &sig.output {
            ReturnType::Type(_, ty) => ty.span(),
            ReturnType::Default => name.span(),
        };
        return Ok(Kind::Stream(output(item, span, ITEM)?));
    }
    if sig.asyncness.is_none() {
        let message = if context.is_some() {
            "a context function must be `async fn`"
        } else {
            "a remote function must be `async fn`, or return `impl Stream<Item = T>` for a stream"
        };
        return Err(syn::Error::new_spanned(quote!(#fn_token #name), message));
    }
    let output = match &sig.output {
        ReturnType::Default => Output {
            ty: syn::parse_quote_spanned!(name.span()=> ()),
            fallible: false,
            span: name.span(),
        },
        ReturnType::Type(_, ty) => self::output(ty, ty.span(), RESULT)?,
    };
    Ok(match context {
        Some(ctx_span) => Kind::Context(output, ctx_span, None),
        None => Kind::Func(output),
    })
}

/// The kind of a `blocking` function: a plain `fn` answering once, like an `async fn`.
fn blocking_kind(sig: &Signature, context: Option<Span>) -> syn::Result<Kind> {
    let name = &sig.ident;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            asyncness,
            "a `blocking` function is a plain `fn`: it runs on a thread of its own; remove \
             `async`",
        ));
    }
    if context.is_some() {
        return Err(syn::Error::new_spanned(
            name,
            "a context function cannot be `blocking`: it talks to its caller asynchronously",
        ));
    }
    if types::stream_item(&sig.output).is_some() {
        return Err(syn::Error::new_spanned(
            &sig.output,
            "a `blocking` function returns one value, not a stream",
        ));
    }
    let output = match &sig.output {
        ReturnType::Default => Output {
            ty: syn::parse_quote_spanned!(name.span()=> ()),
            fallible: false,
            span: name.span(),
        },
        ReturnType::Type(_, ty) => self::output(ty, ty.span(), RESULT)?,
    };
    Ok(Kind::Func(output))
}

/// The error for a result type that borrows.
const RESULT: &str =
    "the result of a remote function must be an owned type (it is decoded by the caller)";
/// The error for a stream item type that borrows.
const ITEM: &str =
    "the items of a remote stream must be an owned type (they are decoded by the caller)";

/// A returned or yielded type, with its `Result` unwrapped.
fn output(ty: &Type, span: Span, borrow_message: &str) -> syn::Result<Output> {
    if let Some(unowned) = types::find_unowned(ty) {
        return Err(unowned_error(unowned, borrow_message));
    }
    Ok(match types::result_ok(ty) {
        Some(ok) => Output {
            ty: ok?.clone(),
            fallible: true,
            span,
        },
        None => Output {
            ty: ty.clone(),
            fallible: false,
            span,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(attr: TokenStream, item: TokenStream) -> syn::Result<Remote> {
        Remote::new(Args::parse(attr)?, &parse_fn(item)?)
    }

    fn error(attr: TokenStream, item: TokenStream) -> String {
        match check(attr, item) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn attribute_arguments() {
        let args = Args::parse(quote!(ns = "demo", context)).unwrap();
        assert_eq!(args.ns.unwrap().value(), "demo");
        assert!(args.context);
        let bad = [
            quote!(ns = "a", ns = "b"),
            quote!(ns = 5),
            quote!(ns = ""),
            quote!(context = true),
            quote!(context, context),
            quote!(name = "x"),
        ];
        for attr in bad {
            assert!(Args::parse(attr.clone()).is_err(), "{attr}");
        }
    }

    #[test]
    fn kinds_follow_the_signature() {
        let func = check(
            quote!(),
            quote!(
                async fn f(a: i64) -> std::io::Result<u8> {}
            ),
        )
        .unwrap();
        assert!(matches!(&func.kind, Kind::Func(out) if out.fallible));
        assert_eq!(func.params.len(), 1);
        let stream = check(
            quote!(),
            quote!(
                fn f() -> impl Stream<Item = u8> {}
            ),
        )
        .unwrap();
        assert!(matches!(&stream.kind, Kind::Stream(item) if !item.fallible));
        let context = check(
            quote!(),
            quote!(
                async fn f(c: actor::Context, n: u8) {}
            ),
        )
        .unwrap();
        assert!(matches!(&context.kind, Kind::Context(..)));
        assert_eq!(context.params.len(), 1);
        let forced = check(
            quote!(context),
            quote!(
                async fn f(c: Ctx) {}
            ),
        )
        .unwrap();
        assert!(matches!(&forced.kind, Kind::Context(..)));
        assert!(forced.params.is_empty());
        let raw = check(
            quote!(),
            quote!(
                async fn r#type() {}
            ),
        )
        .unwrap();
        assert_eq!(raw.name, "type");
    }

    #[test]
    fn misuses_are_refused() {
        let cases = [
            (
                quote!(
                    async unsafe fn f() {}
                ),
                "unsafe",
            ),
            (
                quote!(
                    async fn f()
                    where
                        u8: Copy,
                    {
                    }
                ),
                "generic",
            ),
            (
                quote!(
                    async fn f(ctx: &actor::Context) {}
                ),
                "by value",
            ),
            (
                quote!(
                    async fn f(x: Cow<'a, str>) {}
                ),
                "owned",
            ),
            (
                quote!(
                    async fn f(x: impl Into<String>) {}
                ),
                "impl Trait",
            ),
            (
                quote!(
                    async fn f() -> &'static str {}
                ),
                "owned",
            ),
            (
                quote!(
                    async fn f() -> fmt::Result {}
                ),
                "`Ok` type",
            ),
            (
                quote!(
                    fn f() -> impl Stream {}
                ),
                "item type",
            ),
            (
                quote!(
                    fn f(c: Context) -> impl Stream<Item = u8> {}
                ),
                "context function",
            ),
            (
                quote!(
                    async fn f(ref x: u8) {}
                ),
                "plain names",
            ),
            (
                quote!(
                    struct S;
                ),
                "free function",
            ),
        ];
        for (item, expected) in cases {
            let message = error(quote!(), item.clone());
            assert!(message.contains(expected), "{item}: {message}");
        }
    }
}
