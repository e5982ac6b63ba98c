//! Inspections of the types in a remote function's signature: what they are called, whether
//! they are `Result`-like or an `impl Stream`, and whether they borrow.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{
    GenericArgument, PathArguments, PathSegment, ReturnType, Type, TypeParamBound, visit::Visit,
};

/// The last segment of a type's path (`Context` in `actor::Context`), looking through
/// parentheses and invisible groups.
pub(crate) fn last_segment(ty: &Type) -> Option<&PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Paren(inner) => last_segment(&inner.elem),
        Type::Group(inner) => last_segment(&inner.elem),
        _ => None,
    }
}

/// Whether a type's path ends in `name`.
pub(crate) fn is_named(ty: &Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|segment| segment.ident == name)
}

/// For a `Result`-like type (its path ends in `Result`: `Result<T, E>`, `actor::Result<T>`,
/// `std::io::Result<T>`), its `Ok` type; `None` for any other type. A `Result` without
/// type arguments is an error: its `Ok` type cannot be seen.
pub(crate) fn result_ok(ty: &Type) -> Option<syn::Result<&Type>> {
    let segment = last_segment(ty).filter(|segment| segment.ident == "Result")?;
    let ok = match &segment.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        }),
        _ => None,
    };
    Some(ok.ok_or_else(|| {
        syn::Error::new_spanned(
            ty,
            "cannot see the `Ok` type of this `Result`: write it out, as in `Result<T, E>` \
             or `actor::Result<T>`",
        )
    }))
}

/// For a return type `impl Stream<Item = I>` (any bound whose path ends in `Stream`, beside
/// any others: `impl futures::Stream<Item = I> + Send`), the item type `I`; `None` when the
/// return type is not an `impl Stream`. An `impl Stream` that does not name its item type is
/// an error.
pub(crate) fn stream_item(output: &ReturnType) -> Option<syn::Result<&Type>> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let Type::ImplTrait(impl_trait) = strip(ty) else {
        return None;
    };
    let stream = impl_trait.bounds.iter().find_map(|bound| match bound {
        TypeParamBound::Trait(bound) => bound
            .path
            .segments
            .last()
            .filter(|segment| segment.ident == "Stream"),
        _ => None,
    })?;
    let item = match &stream.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(&assoc.ty),
            _ => None,
        }),
        _ => None,
    };
    Some(item.ok_or_else(|| {
        syn::Error::new_spanned(
            stream,
            "name the stream's item type: `impl Stream<Item = T>`",
        )
    }))
}

/// A type without its parentheses and invisible groups.
pub(crate) fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => strip(&inner.elem),
        Type::Group(inner) => strip(&inner.elem),
        _ => ty,
    }
}

/// What makes a type unfit to cross a process boundary by value, with its tokens (an error
/// spans all of them).
pub(crate) enum Unowned {
    /// A reference (`&str`) or a lifetime other than `'static` (`Cow<'a, str>`).
    Borrow(TokenStream),
    /// An `impl Trait` (a hidden generic, or an unnameable type).
    ImplTrait(TokenStream),
}

/// The first part of `ty` that borrows or hides its type, if any.
pub(crate) fn find_unowned(ty: &Type) -> Option<Unowned> {
    let mut finder = Finder(None);
    finder.visit_type(ty);
    finder.0
}

struct Finder(Option<Unowned>);

impl<'ast> Visit<'ast> for Finder {
    fn visit_type_reference(&mut self, node: &'ast syn::TypeReference) {
        if self.0.is_none() {
            self.0 = Some(Unowned::Borrow(node.to_token_stream()));
        }
    }

    fn visit_type_impl_trait(&mut self, node: &'ast syn::TypeImplTrait) {
        if self.0.is_none() {
            self.0 = Some(Unowned::ImplTrait(node.to_token_stream()));
        }
    }

    fn visit_lifetime(&mut self, node: &'ast syn::Lifetime) {
        if self.0.is_none() && node.ident != "static" {
            self.0 = Some(Unowned::Borrow(node.to_token_stream()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn result_like_types_give_their_ok_type() {
        let ty: Type = parse_quote!(std::io::Result<Vec<u8>>);
        let ok = result_ok(&ty).unwrap().unwrap();
        assert_eq!(ok, &parse_quote!(Vec<u8>));
        assert!(result_ok(&parse_quote!(Option<u8>)).is_none());
        assert!(result_ok(&parse_quote!(std::fmt::Result)).unwrap().is_err());
    }

    #[test]
    fn stream_items_are_found_beside_other_bounds() {
        let ret: ReturnType = parse_quote!(-> impl Send + futures::Stream<Item = u64> + 'static);
        assert_eq!(stream_item(&ret).unwrap().unwrap(), &parse_quote!(u64));
        assert!(stream_item(&parse_quote!(-> impl Stream)).unwrap().is_err());
        assert!(stream_item(&parse_quote!(-> Vec<u64>)).is_none());
        assert!(stream_item(&parse_quote!(-> impl Iterator<Item = u64>)).is_none());
    }

    #[test]
    fn borrows_are_found_anywhere_in_a_type() {
        assert!(find_unowned(&parse_quote!(Vec<&str>)).is_some());
        assert!(find_unowned(&parse_quote!(Cow<'a, str>)).is_some());
        assert!(find_unowned(&parse_quote!(Option<impl Into<String>>)).is_some());
        assert!(find_unowned(&parse_quote!(Cow<'static, str>)).is_none());
        assert!(find_unowned(&parse_quote!(std::collections::HashMap<String, Vec<u8>>)).is_none());
    }
}
