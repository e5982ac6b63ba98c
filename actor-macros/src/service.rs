//! `#[actor::service]`: registers a function as a service, started by every actor that enables
//! its namespace: `async fn name([svc: actor::Service]) -> R` runs as a task of the actor,
//! `#[service(blocking)] fn name([svc: actor::Service]) -> R` on a thread of its own. `R` is
//! `()` or a `Result`: any return ends the service (fatal while its actor runs).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{FnArg, ItemFn, LitStr, spanned::Spanned};

/// The attribute's arguments.
#[derive(Default)]
struct Args {
    ns: Option<LitStr>,
    blocking: bool,
}

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("ns") {
            if args.ns.is_some() {
                return Err(meta.error("`ns` is given twice"));
            }
            args.ns = Some(crate::model::parse_ns(&meta)?);
            Ok(())
        } else if meta.path.is_ident("blocking") {
            args.blocking = crate::model::parse_flag(&meta, args.blocking, "blocking", "service")?;
            Ok(())
        } else {
            Err(meta
                .error("unknown argument of `#[service]`: expected `ns = \"...\"` or `blocking`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(attr)?;
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    let ident = &sig.ident;
    match (&sig.asyncness, args.blocking) {
        (None, false) => {
            return Err(syn::Error::new_spanned(
                sig.fn_token,
                "a service is an `async fn`, or a plain `fn` under `#[service(blocking)]`",
            ));
        }
        (Some(asyncness), true) => {
            return Err(syn::Error::new_spanned(
                asyncness,
                "a `blocking` service is a plain `fn`: it runs on a thread of its own",
            ));
        }
        _ => {}
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a service cannot be generic",
        ));
    }
    let takes_service = match sig.inputs.len() {
        0 => false,
        1 => match sig.inputs.first() {
            Some(FnArg::Typed(_)) => true,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "a service takes at most one argument, `svc: actor::Service`",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &sig.inputs,
                "a service takes at most one argument, `svc: actor::Service`",
            ));
        }
    };
    let call = if takes_service {
        quote_spanned!(sig.inputs.span()=> #ident(svc))
    } else {
        quote!({
            let _ = svc;
            #ident()
        })
    };
    let ns = match &args.ns {
        Some(ns) => quote!(#ns),
        None => quote!(::core::module_path!()),
    };
    let name = syn::ext::IdentExt::unraw(ident).to_string();
    let start = if args.blocking {
        quote! {
            fn __actor_service_start(svc: ::actor::Service) -> ::actor::__private::ServiceEnd {
                ::actor::__private::ServiceOutcome::into_end(#call)
            }
            ::actor::__private::ServiceStart::Blocking(__actor_service_start)
        }
    } else {
        quote! {
            fn __actor_service_start(
                svc: ::actor::Service,
            ) -> ::actor::__private::futures::future::BoxFuture<
                'static,
                ::actor::__private::ServiceEnd,
            > {
                ::actor::__private::async_service(#call)
            }
            ::actor::__private::ServiceStart::Async(__actor_service_start)
        }
    };
    Ok(quote! {
        #function
        const _: () = {
            ::actor::__private::inventory::submit! {
                ::actor::__private::ServiceRegistration {
                    ns: #ns,
                    name: #name,
                    start: { #start },
                }
            }
        };
    })
}
