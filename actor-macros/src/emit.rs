//! Code generation: from a checked [`Remote`] to the function, its typed-call struct, the
//! `Remote*Fn` impl and the registration. Generated code names only `::actor::...` paths.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Ident, ItemFn, LitStr, spanned::Spanned};

use crate::{
    model::{Kind, Output, Remote},
    types,
};

/// Everything `#[remote]` expands to.
pub(crate) fn remote(function: &ItemFn, remote: &Remote) -> TokenStream {
    let call_struct = call_struct(remote);
    let remote_impl = remote_impl(remote);
    let registration = registration(remote);
    quote! {
        #function
        #call_struct
        #remote_impl
        #registration
    }
}

/// The namespace expression: the attribute's string, or the module path.
fn ns(remote: &Remote) -> TokenStream {
    match &remote.ns {
        Some(ns) => quote!(#ns),
        None => quote!(::core::module_path!()),
    }
}

/// `struct NAME { a: A, .. }`: the typed call, whose fields are the kwargs, and its serde
/// impls.
///
/// The derives would report a parameter type that does not implement `Serialize` or
/// `Deserialize` at the attribute rather than at the type, so `Serialize` is written out here
/// with every field's statement spanned at its type, and `Deserialize` is derived with each
/// field deserialized through `deserialize_with`, whose path is spanned at its type.
fn call_struct(remote: &Remote) -> TokenStream {
    let Remote {
        ident,
        name,
        vis,
        cfgs,
        params,
        kind,
        ..
    } = remote;
    let how = match kind {
        Kind::Func(_) => "request/response function",
        Kind::Stream(_) => "stream function",
        Kind::Context(..) => "context function",
    };
    let doc = format!(
        "The typed call of the remote {how} `{name}`: its arguments, by name. Build it \
         like a struct (`{name} {{ .. }}`) and pass it to a portal."
    );
    let fields = params.iter().map(|param| {
        let field = &param.ident;
        let ty = &param.ty;
        let span = ty.span();
        let doc = format!("Argument `{}`.", unraw(field));
        let deserialize = LitStr::new("::actor::__private::serde::Deserialize::deserialize", span);
        // `deserialize_with` loses serde's "a missing `Option` field is `None`"; `default`
        // brings it back for parameters spelled `Option<..>`.
        let default =
            types::is_named(ty, "Option").then(|| quote_spanned!(span=> #[serde(default)]));
        quote_spanned! {span=>
            #[doc = #doc]
            #[serde(deserialize_with = #deserialize)]
            #default
            #vis #field: #ty
        }
    });
    let serde = quote!(::actor::__private::serde);
    let serializer = Ident::new("serializer", Span::mixed_site());
    let state = Ident::new("state", Span::mixed_site());
    let len = params.len();
    let serialize_fields = params.iter().map(|param| {
        // The whole statement, the field access included, at the parameter's type.
        let span = param.ty.span();
        let key = unraw(&param.ident);
        let mut field = param.ident.clone();
        field.set_span(span);
        quote_spanned! {span=>
            ::actor::__private::serde::ser::SerializeStruct::serialize_field(
                &mut #state, #key, &self.#field,
            )?;
        }
    });
    quote! {
        #(#cfgs)*
        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #[derive(#serde::Deserialize)]
        #[serde(crate = "::actor::__private::serde", deny_unknown_fields)]
        #vis struct #ident {
            #(#fields,)*
        }

        #(#cfgs)*
        #[automatically_derived]
        impl #serde::Serialize for #ident {
            fn serialize<S>(&self, #serializer: S) -> ::core::result::Result<S::Ok, S::Error>
            where
                S: #serde::Serializer,
            {
                let mut #state = #serde::Serializer::serialize_struct(#serializer, #name, #len)?;
                #(#serialize_fields)*
                #serde::ser::SerializeStruct::end(#state)
            }
        }
    }
}

/// `impl RemoteFn for NAME` (or `RemoteStreamFn`, `RemoteContextFn`).
fn remote_impl(remote: &Remote) -> TokenStream {
    let Remote {
        ident,
        name,
        cfgs,
        kind,
        ..
    } = remote;
    let ns = ns(remote);
    let (tr, assoc, output) = match kind {
        Kind::Func(output) => (quote!(RemoteFn), quote!(Output), output),
        Kind::Stream(item) => (quote!(RemoteStreamFn), quote!(Item), item),
        Kind::Context(output, _, _) => (quote!(RemoteContextFn), quote!(Output), output),
    };
    // A context's `started` value: typed when declared, else any value.
    let started = match kind {
        Kind::Context(_, _, Some(started)) => {
            quote_spanned!(started.span()=> type Started = #started;)
        }
        Kind::Context(_, _, None) => quote!(
            type Started = ::actor::Value;
        ),
        _ => quote!(),
    };
    let ty = &output.ty;
    // The user's span on the type: a result the caller cannot decode errors there.
    let assoc_ty = quote_spanned!(ty.span()=> type #assoc = #ty;);
    quote! {
        #(#cfgs)*
        impl ::actor::#tr for #ident {
            const NS: &'static str = #ns;
            const NAME: &'static str = #name;
            #assoc_ty
            #started
        }
    }
}

/// The handler that decodes the kwargs and starts the function, and its `inventory`
/// registration, inside an anonymous `const` so their names stay out of the user's module.
fn registration(remote: &Remote) -> TokenStream {
    let Remote {
        ident,
        name,
        cfgs,
        params,
        kind,
        ..
    } = remote;
    let ns = ns(remote);
    // Locals with mixed-site hygiene cannot clash with the function's name.
    let kwargs = Ident::new("kwargs", Span::mixed_site());
    let args = Ident::new("args", Span::mixed_site());
    let ctx = Ident::new("ctx", Span::mixed_site());
    let handler = Ident::new("__actor_remote_handler", Span::call_site());
    let fields = params.iter().map(|param| {
        let field = &param.ident;
        quote!(#args.#field)
    });
    let decode = quote! {
        let #args: #ident = ::actor::__private::decode_args(&#kwargs, #name)?;
    };
    let (signature, body, variant) = match kind {
        Kind::Func(output) if remote.blocking => {
            // On the actor's thread runner; an `Err` is the invocation's failure (its status
            // says so), then the call's error.
            let call = if output.fallible {
                quote!(::actor::__private::run_blocking(#name, move || {
                    ::actor::__private::blocking_result(#ident(#(#fields),*))
                })
                .await)
            } else {
                quote!(::actor::__private::run_blocking(#name, move || {
                    ::core::result::Result::Ok::<_, ::actor::Error>(#ident(#(#fields),*))
                })
                .await?)
            };
            let run = call_future(ident.span(), encode(output, call));
            (
                quote!((#kwargs: ::actor::__private::RawPayload)
                    -> ::core::result::Result<::actor::__private::CallFuture, ::actor::Error>),
                run,
                quote!(Func),
            )
        }
        Kind::Func(output) => {
            let call = quote!(#ident(#(#fields),*).await);
            let run = call_future(ident.span(), encode(output, call));
            (
                quote!((#kwargs: ::actor::__private::RawPayload)
                    -> ::core::result::Result<::actor::__private::CallFuture, ::actor::Error>),
                run,
                quote!(Func),
            )
        }
        Kind::Context(output, ctx_span, _) => {
            // The context argument carries the parameter's span: a first parameter that is
            // not `actor::Context` (under `#[remote(context)]`) is a type mismatch there.
            let ctx_arg = Ident::new("ctx", Span::mixed_site().located_at(*ctx_span));
            let call = quote!(#ident(#ctx_arg, #(#fields),*).await);
            let run = call_future(ident.span(), encode(output, call));
            (
                quote!((#ctx: ::actor::Context, #kwargs: ::actor::__private::RawPayload)
                    -> ::core::result::Result<::actor::__private::CallFuture, ::actor::Error>),
                run,
                quote!(Context),
            )
        }
        Kind::Stream(item) => {
            let stream = if item.fallible {
                quote!(fallible_item_stream)
            } else {
                quote!(item_stream)
            };
            // Bound to a local first, so an unmet bound on the stream is reported at the
            // return type (see `encode`).
            let value = Ident::new("stream", Span::mixed_site().located_at(item.span));
            let run = quote! {{
                let #value = #ident(#(#fields),*);
                ::actor::__private::#stream(#value)
            }};
            (
                quote!((#kwargs: ::actor::__private::RawPayload)
                    -> ::core::result::Result<::actor::__private::ItemStream, ::actor::Error>),
                run,
                quote!(Stream),
            )
        }
    };
    quote! {
        #(#cfgs)*
        const _: () = {
            fn #handler #signature {
                #decode
                ::core::result::Result::Ok(#body)
            }
            ::actor::__private::inventory::submit! {
                ::actor::__private::Registration {
                    ns: #ns,
                    name: #name,
                    handler: ::actor::__private::Handler::#variant(#handler),
                }
            }
        };
    }
}

/// Encodes a function's result: `encode_result` for a `Result`, `encode_output` otherwise.
/// Spanned at the return type and naming the output type explicitly, so a result that does
/// not implement `Serialize` (or an error type that cannot be boxed) is reported there.
fn encode(output: &Output, call: TokenStream) -> TokenStream {
    let ty = &output.ty;
    if output.fallible {
        quote_spanned!(output.span=> ::actor::__private::encode_result::<#ty, _>(#call))
    } else {
        quote_spanned!(output.span=> ::actor::__private::encode_output::<#ty>(&#call))
    }
}

/// Boxes the running function; spanned at its name, where a future that is not `Send` (or
/// not `'static`) is reported.
fn call_future(span: Span, body: TokenStream) -> TokenStream {
    quote_spanned! {span=>
        ::actor::__private::call_future(async move { #body })
    }
}

/// An identifier as written on the wire: without `r#`.
fn unraw(ident: &Ident) -> String {
    syn::ext::IdentExt::unraw(ident).to_string()
}
