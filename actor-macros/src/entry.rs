//! `#[actor::main]` and `#[actor::test]`: wrap an `async fn` so the process first decides
//! whether it is a root actor or a child actor started by a parent, before any user code runs.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{ItemFn, spanned::Spanned};

/// Which entry point to generate.
pub(crate) enum Entry {
    Main,
    Test,
}

pub(crate) fn expand(
    entry: Entry,
    attr: TokenStream,
    item: TokenStream,
) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "this attribute takes no arguments",
        ));
    }
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            "the entry point must be an `async fn`",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "the entry point takes no arguments",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "the entry point cannot be generic",
        ));
    }
    let attrs = &function.attrs;
    let vis = &function.vis;
    let name = &sig.ident;
    let output = &sig.output;
    let body = &function.block;
    // The body becomes an `async fn` of its own, whose future's type the choice between a
    // task and `block_on` can see whole (`root_program::Tag`).
    let program = quote! {
        || {
            async fn __actor_program() #output #body
            ::actor::__place_program!(__actor_program())
        }
    };
    Ok(match entry {
        Entry::Main => quote_spanned! {sig.span()=>
            #(#attrs)*
            #vis fn #name() #output {
                ::actor::__private::run_main(#program)
            }
        },
        Entry::Test => quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis fn #name() #output {
                ::actor::__private::run_test_program(
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    #program,
                )
            }
        },
    })
}
