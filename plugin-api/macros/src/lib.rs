//! `#[interface]`: turns a trait into a typed interface between plugins (ABI 1.3). Used through
//! `plugin_api::interface`; see its documentation there.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Error, FnArg, GenericArgument, Ident, ItemTrait, LitInt, LitStr, Pat, PathArguments,
    ReturnType, Token, TraitItem, Type, TypeParamBound,
};

/// Turns a trait into a typed interface; see `plugin_api::interface`.
#[proc_macro_attribute]
pub fn interface(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(attr as Args);
    let item = syn::parse_macro_input!(item as ItemTrait);
    if let Some(message) = abi_stable_missing() {
        // The trait alone, without the table and impls: the derive's own errors (unresolved
        // `::abi_stable` paths, a dozen of them) would bury this one.
        let error = Error::new(Span::call_site(), message).to_compile_error();
        return quote!(#error #item).into();
    }
    match expand(args, item) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Why the crate being compiled cannot use the table's `#[derive(StableAbi)]`, if it cannot: the
/// derive's code names `::abi_stable`, which resolves only to a dependency of that crate listed
/// under its own name (a re-export, such as plugin-api's, does not stand in for it). `None` when
/// the manifest cannot be read (a build without cargo): the derive then says what is missing.
fn abi_stable_missing() -> Option<String> {
    const WHY: &str = concat!(
        "`#[plugin_api::interface]` derives abi_stable's `StableAbi` on the interface's function ",
        "table (its layout is checked when a Rust caller queries it), and that derive's code ",
        "names `::abi_stable`"
    );
    match proc_macro_crate::crate_name("abi_stable") {
        Ok(proc_macro_crate::FoundCrate::Itself) => None,
        Ok(proc_macro_crate::FoundCrate::Name(name)) if name == "abi_stable" => None,
        Ok(proc_macro_crate::FoundCrate::Name(name)) => Some(format!(
            "{WHY}, which the dependency renamed `{name}` does not provide: list it as `abi_stable = \"0.11\"` in this crate's [dependencies], not renamed"
        )),
        Err(proc_macro_crate::Error::CrateNotFound { .. }) => Some(format!(
            "{WHY}: add `abi_stable = \"0.11\"` to this crate's [dependencies] (plugin-api's re-export cannot stand in for it)"
        )),
        Err(_) => None,
    }
}

/// `id = "...", version = N[, minor = M]`.
struct Args {
    id: LitStr,
    major: LitInt,
    minor: Option<LitInt>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut id = None;
        let mut major = None;
        let mut minor = None;
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            let name = pair
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let syn::Expr::Lit(syn::ExprLit { lit, .. }) = &pair.value else {
                return Err(Error::new_spanned(&pair.value, "expected a literal"));
            };
            match (name.as_str(), lit) {
                ("id", syn::Lit::Str(s)) => id = Some(s.clone()),
                ("version", syn::Lit::Int(i)) => major = Some(i.clone()),
                ("minor", syn::Lit::Int(i)) => minor = Some(i.clone()),
                _ => {
                    return Err(Error::new_spanned(
                        &pair,
                        "expected `id = \"...\"`, `version = N` or `minor = N`",
                    ))
                }
            }
        }
        let id = id.ok_or_else(|| input.error("missing `id = \"...\"`"))?;
        let major =
            major.ok_or_else(|| input.error("missing `version = N` (the major version)"))?;
        Ok(Args { id, major, minor })
    }
}

/// How a parameter crosses the boundary.
enum Param {
    /// `&str`: a `PhStr`.
    Str,
    /// `&[u8]`: a `PhBytes`.
    Bytes,
    /// An integer, float or `bool`, or a type of the user's that implements abi_stable's
    /// `StableAbi` (a `#[repr(C)]` struct that derives it): as is.
    Plain(Box<Type>),
    /// `&mut dyn FnMut(..) -> bool`: a context pointer and a function, in a
    /// `#[repr(transparent)]` wrapper named by the second field (abi_stable's derive takes no
    /// function pointer inside a function pointer's parameters).
    Callback(Vec<Param>, Ident),
}

/// How a method's `Ok` value crosses the boundary.
enum Return {
    Unit,
    Plain(Box<Type>),
    String,
    Bytes,
    OptionString,
    OptionBytes,
}

const PLAIN: [&str; 13] = [
    "bool", "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32", "f64",
];

fn is_plain(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.get_ident().is_some_and(|i| PLAIN.contains(&i.to_string().as_str())))
}

/// Rust types that do not cross by value, whatever they implement: each has a view or a return
/// form of its own, or none.
const NOT_BY_VALUE: [&str; 9] = [
    "String", "Vec", "Option", "Result", "Box", "Rc", "Arc", "HashMap", "BTreeMap",
];

/// A type of the user's, passed as is: a path without generics that is not one of the Rust types
/// above. It must implement abi_stable's `StableAbi` (checked by [`stable_abi_check`]).
fn is_user_value(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    p.qself.is_none()
        && p.path.segments.iter().all(|s| s.arguments.is_none())
        && p.path.segments.last().is_some_and(|s| {
            !NOT_BY_VALUE.contains(&s.ident.to_string().as_str())
                && s.ident != "str"
                && s.ident != "Self"
        })
}

/// A check that `ty`, a user's type passed as is, implements `StableAbi`, with the error at the
/// type.
fn stable_abi_check(ty: &Type) -> Tokens {
    quote_spanned! {ty.span()=>
        const _: fn() = || {
            fn passed_as_is_so_it_derives_stable_abi<T: ::abi_stable::StableAbi>() {}
            passed_as_is_so_it_derives_stable_abi::<#ty>();
        };
    }
}

fn is_ident(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.is_ident(name))
}

/// The single generic argument of `Name<T>`, if `ty` is that.
fn generic_of<'t>(ty: &'t Type, name: &str) -> Option<&'t Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

fn is_vec_u8(ty: &Type) -> bool {
    generic_of(ty, "Vec").is_some_and(|t| is_ident(t, "u8"))
}

fn param(ty: &Type, in_callback: bool) -> syn::Result<Param> {
    if is_plain(ty) || is_user_value(ty) {
        return Ok(Param::Plain(Box::new(ty.clone())));
    }
    if let Type::Reference(r) = ty {
        match (&*r.elem, r.mutability.is_some()) {
            (Type::Path(p), false) if p.path.is_ident("str") => return Ok(Param::Str),
            (Type::Slice(s), false) if is_ident(&s.elem, "u8") => return Ok(Param::Bytes),
            (Type::TraitObject(obj), true) if !in_callback => {
                for bound in &obj.bounds {
                    let TypeParamBound::Trait(t) = bound else {
                        continue;
                    };
                    let last = t.path.segments.last();
                    if let Some(seg) = last.filter(|s| s.ident == "FnMut") {
                        let PathArguments::Parenthesized(args) = &seg.arguments else {
                            break;
                        };
                        let ReturnType::Type(_, out) = &args.output else {
                            return Err(Error::new_spanned(ty, "a callback returns `bool`: `true` for the next item, `false` to stop"));
                        };
                        if !is_ident(out, "bool") {
                            return Err(Error::new_spanned(out, "a callback returns `bool`: `true` for the next item, `false` to stop"));
                        }
                        let inputs = args
                            .inputs
                            .iter()
                            .map(|t| param(t, true))
                            .collect::<syn::Result<Vec<_>>>()?;
                        return Ok(Param::Callback(
                            inputs,
                            Ident::new("__unnamed", Span::call_site()),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Err(Error::new_spanned(
        ty,
        "unsupported parameter type: use &str, &[u8], an integer, a float, bool, a #[repr(C)] type of yours that derives abi_stable's StableAbi, or (not inside a callback) &mut dyn FnMut(..) -> bool",
    ))
}

fn output(ret: &ReturnType) -> syn::Result<Return> {
    let unsupported = |span: &dyn quote::ToTokens| {
        Error::new_spanned(
            span,
            "an interface method returns Result<T, plugin_api::Error> with T one of (), bool, an integer, a float, String, Vec<u8>, Option<String>, Option<Vec<u8>>, or a #[repr(C)] type of yours that derives abi_stable's StableAbi",
        )
    };
    let ReturnType::Type(_, ty) = ret else {
        return Err(Error::new(
            Span::call_site(),
            "an interface method returns Result<T, plugin_api::Error>",
        ));
    };
    let ok = generic_of(ty, "Result").ok_or_else(|| unsupported(ty))?;
    if matches!(ok, Type::Tuple(t) if t.elems.is_empty()) {
        return Ok(Return::Unit);
    }
    if is_plain(ok) {
        return Ok(Return::Plain(Box::new(ok.clone())));
    }
    if is_ident(ok, "String") {
        return Ok(Return::String);
    }
    if is_vec_u8(ok) {
        return Ok(Return::Bytes);
    }
    if let Some(inner) = generic_of(ok, "Option") {
        if is_ident(inner, "String") {
            return Ok(Return::OptionString);
        }
        if is_vec_u8(inner) {
            return Ok(Return::OptionBytes);
        }
    }
    if is_user_value(ok) {
        return Ok(Return::Plain(Box::new(ok.clone())));
    }
    Err(unsupported(ok))
}

/// The ABI types of a parameter, in order.
fn abi_types(p: &Param) -> Tokens {
    match p {
        Param::Str => quote!(::plugin_api::abi::PhStr),
        Param::Bytes => quote!(::plugin_api::abi::PhBytes),
        Param::Plain(t) => quote!(#t),
        Param::Callback(_, wrapper) => {
            quote!(*mut ::core::ffi::c_void, #wrapper)
        }
    }
}

/// Caller side: the value of a Rust argument `name` as the ABI passes it.
fn to_abi(p: &Param, name: &Ident, trampoline: &Ident) -> Tokens {
    match p {
        Param::Str => quote!(::plugin_api::abi::PhStr::new(#name)),
        Param::Bytes => quote!(::plugin_api::abi::PhBytes::new(#name)),
        Param::Plain(_) => quote!(#name),
        Param::Callback(_, wrapper) => {
            quote!((&mut #name as *mut _ as *mut ::core::ffi::c_void), #wrapper(#trampoline))
        }
    }
}

/// Provider side: reads the ABI value `name` back into Rust, or returns the error code.
fn from_abi(p: &Param, name: &Ident) -> Tokens {
    match p {
        Param::Str => {
            quote!(let #name = unsafe { ::plugin_api::__private::iface::arg_str(#name) }?;)
        }
        Param::Bytes => {
            quote!(let #name = unsafe { ::plugin_api::__private::iface::arg_bytes(#name) }?;)
        }
        Param::Plain(_) => quote!(),
        Param::Callback(..) => quote!(),
    }
}

fn expand(args: Args, mut item: ItemTrait) -> syn::Result<Tokens> {
    let trait_name = item.ident.clone();
    let vis = item.vis.clone();
    let table = format_ident!("{}Table", trait_name);
    let id = &args.id;
    let major = &args.major;
    let minor = args
        .minor
        .clone()
        .unwrap_or_else(|| LitInt::new("0", Span::call_site()));
    if !item.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &item.generics,
            "an interface trait has no generics",
        ));
    }
    item.supertraits
        .push(syn::parse_quote!(::core::marker::Send));
    item.supertraits
        .push(syn::parse_quote!(::core::marker::Sync));
    item.supertraits.push(syn::parse_quote!('static));

    let mut signature = String::new();
    let mut fields = Vec::new();
    let mut provider_fns = Vec::new();
    let mut table_entries = Vec::new();
    let mut caller_methods = Vec::new();
    let mut forwarders = Vec::new();
    let mut state_forwarders = Vec::new();
    let mut wrappers = Vec::new();
    let mut checks = Vec::new();
    for trait_item in &item.items {
        let TraitItem::Fn(method) = trait_item else {
            return Err(Error::new_spanned(
                trait_item,
                "an interface trait has methods only",
            ));
        };
        let sig = &method.sig;
        let name = &sig.ident;
        if !sig.generics.params.is_empty() || sig.asyncness.is_some() || sig.unsafety.is_some() {
            return Err(Error::new_spanned(
                sig,
                "an interface method is a plain `fn(&self, ..)`",
            ));
        }
        let mut inputs = sig.inputs.iter();
        match inputs.next() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
            _ => {
                return Err(Error::new_spanned(
                    sig,
                    "an interface method takes `&self` first",
                ))
            }
        }
        let mut params = Vec::new();
        for (i, input) in inputs.enumerate() {
            let FnArg::Typed(typed) = input else {
                unreachable!()
            };
            let arg_name = match &*typed.pat {
                Pat::Ident(p) => p.ident.clone(),
                _ => format_ident!("arg{}", i),
            };
            let mut p = param(&typed.ty, false)?;
            if let Param::Callback(cb_params, wrapper) = &mut p {
                *wrapper = format_ident!("{}_{}_{}", table, name, arg_name);
                let cb_abi = cb_params.iter().map(abi_types);
                let doc = format!(
                    "The function of the callback `{arg_name}` of `{trait_name}::{name}`: called with the caller's context and an item, returns `true` for the next item."
                );
                wrappers.push(quote! {
                    #[doc = #doc]
                    #[repr(transparent)]
                    #[derive(Clone, Copy, ::abi_stable::StableAbi)]
                    #[allow(non_camel_case_types)]
                    #vis struct #wrapper(
                        pub unsafe extern "C" fn(*mut ::core::ffi::c_void, #(#cb_abi),*) -> bool,
                    );
                });
                for cb_param in cb_params.iter() {
                    if let Param::Plain(t) = cb_param {
                        if !is_plain(t) {
                            checks.push(stable_abi_check(t));
                        }
                    }
                }
            }
            if let Param::Plain(t) = &p {
                if !is_plain(t) {
                    checks.push(stable_abi_check(t));
                }
            }
            params.push((arg_name, p, typed.ty.clone()));
        }
        let ret = output(&sig.output)?;
        if let Return::Plain(t) = &ret {
            if !is_plain(t) {
                checks.push(stable_abi_check(t));
            }
        }
        {
            let types: Vec<String> = params
                .iter()
                .map(|(_, _, ty)| compact(&quote!(#ty).to_string()))
                .collect();
            let out = &sig.output;
            signature.push_str(&format!(
                "{}({}){};",
                name,
                types.join(","),
                compact(&quote!(#out).to_string())
            ));
        }
        let what = format!("{}::{} ({} {})", trait_name, name, id.value(), major);

        // The table field.
        let abi_params = params.iter().map(|(_, p, _)| abi_types(p));
        let out_param = match &ret {
            Return::Unit => quote!(),
            Return::Plain(t) => quote!(out: *mut #t,),
            _ => quote!(out: *const ::plugin_api::abi::PhBytesSink,),
        };
        let doc = format!("`{name}` of `{trait_name}`.");
        fields.push(quote! {
            #[doc = #doc]
            pub #name: unsafe extern "C" fn(
                user_data: *mut ::core::ffi::c_void,
                #(#abi_params,)*
                #out_param
                error: *const ::plugin_api::abi::PhBytesSink,
            ) -> ::plugin_api::abi::PhResultCode,
        });

        // Provider side: an `extern "C"` function per method.
        let provider_fn = format_ident!("__provide_{}_{}", trait_name, name);
        let mut abi_args = Vec::new();
        let mut reads = Vec::new();
        let mut call_args = Vec::new();
        for (arg_name, p, _) in &params {
            match p {
                Param::Callback(cb_params, wrapper) => {
                    let ctx = format_ident!("{}_context", arg_name);
                    let fun = format_ident!("{}_function", arg_name);
                    abi_args.push(quote!(#ctx: *mut ::core::ffi::c_void));
                    abi_args.push(quote!(#fun: #wrapper));
                    let cb_names: Vec<Ident> = (0..cb_params.len())
                        .map(|i| format_ident!("a{}", i))
                        .collect();
                    let cb_rust: Vec<Tokens> = cb_params
                        .iter()
                        .zip(&cb_names)
                        .map(|(p, n)| match p {
                            Param::Str => quote!(#n: &str),
                            Param::Bytes => quote!(#n: &[u8]),
                            Param::Plain(t) => quote!(#n: #t),
                            Param::Callback(..) => unreachable!(),
                        })
                        .collect();
                    let cb_pass: Vec<Tokens> = cb_params
                        .iter()
                        .zip(&cb_names)
                        .map(|(p, n)| to_abi(p, n, n))
                        .collect();
                    reads.push(quote! {
                        let mut #arg_name = |#(#cb_rust),*| -> bool {
                            // SAFETY: the caller's callback and context, valid for this call
                            // (the interface's contract); the views outlive the call.
                            unsafe { (#fun.0)(#ctx, #(#cb_pass),*) }
                        };
                    });
                    call_args.push(quote!(&mut #arg_name));
                }
                _ => {
                    let ty = abi_types(p);
                    abi_args.push(quote!(#arg_name: #ty));
                    reads.push(from_abi(p, arg_name));
                    call_args.push(quote!(#arg_name));
                }
            }
        }
        let deliver = match &ret {
            Return::Unit => quote!(let () = value;),
            Return::Plain(_) => quote! {
                if !out.is_null() {
                    // SAFETY: the caller passes a writable value (the interface's contract).
                    unsafe { out.write(value) };
                }
            },
            Return::String => {
                quote!(unsafe { ::plugin_api::__private::iface::write_sink(out, value.as_bytes()) };)
            }
            Return::Bytes => {
                quote!(unsafe { ::plugin_api::__private::iface::write_sink(out, &value) };)
            }
            Return::OptionString => quote! {
                if let Some(value) = value {
                    unsafe { ::plugin_api::__private::iface::write_sink(out, value.as_bytes()) };
                }
            },
            Return::OptionBytes => quote! {
                if let Some(value) = value {
                    unsafe { ::plugin_api::__private::iface::write_sink(out, &value) };
                }
            },
        };
        provider_fns.push(quote! {
            #[allow(non_snake_case, clippy::undocumented_unsafe_blocks)]
            unsafe extern "C" fn #provider_fn<S: #trait_name>(
                user_data: *mut ::core::ffi::c_void,
                #(#abi_args,)*
                #out_param
                error: *const ::plugin_api::abi::PhBytesSink,
            ) -> ::plugin_api::abi::PhResultCode {
                // SAFETY: `user_data` is the provision's `*const S` (the contract of
                // `ProvidedBy`), alive while any caller holds a reference; the views and sinks
                // are the caller's, valid for this call (the interface's contract).
                unsafe {
                    ::plugin_api::__private::iface::serve(#what, error, || {
                        let provider: &S = ::plugin_api::__private::iface::state::<S>(user_data);
                        #(#reads)*
                        let value = provider.#name(#(#call_args),*)?;
                        #deliver
                        Ok(())
                    })
                }
            }
        });
        table_entries.push(quote!(#name: #provider_fn::<S>,));

        // The forwarding methods of `Arc<dyn Trait>`'s provision and of the plugin's state
        // (`OnState<S>`, which enters the call first).
        {
            let params_decl: Vec<Tokens> =
                params.iter().map(|(n, _, ty)| quote!(#n: #ty)).collect();
            let params_pass: Vec<&Ident> = params.iter().map(|(n, _, _)| n).collect();
            let output_ty = &sig.output;
            forwarders.push(quote! {
                #[inline]
                fn #name(&self, #(#params_decl),*) #output_ty {
                    self.0.#name(#(#params_pass),*)
                }
            });
            state_forwarders.push(quote! {
                #[inline]
                fn #name(&self, #(#params_decl),*) #output_ty {
                    let state = self.enter()?;
                    <S as #trait_name>::#name(&state, #(#params_pass),*)
                }
            });
        }

        // Caller side: the trait's method on `Remote<dyn Trait>`.
        let rust_params = params.iter().map(|(n, p, ty)| match p {
            Param::Callback(..) => quote!(mut #n: #ty),
            _ => quote!(#n: #ty),
        });
        let mut trampolines = Vec::new();
        let mut passes = Vec::new();
        for (arg_name, p, ty) in &params {
            let trampoline = format_ident!("__callback_{}", arg_name);
            if let Param::Callback(cb_params, _) = p {
                let cb_names: Vec<Ident> = (0..cb_params.len())
                    .map(|i| format_ident!("a{}", i))
                    .collect();
                let cb_abi: Vec<Tokens> = cb_params
                    .iter()
                    .zip(&cb_names)
                    .map(|(p, n)| {
                        let t = abi_types(p);
                        quote!(#n: #t)
                    })
                    .collect();
                let cb_reads: Vec<Tokens> = cb_params
                    .iter()
                    .zip(&cb_names)
                    .map(|(p, n)| from_abi(p, n))
                    .collect();
                trampolines.push(quote! {
                    #[allow(clippy::undocumented_unsafe_blocks)]
                    unsafe extern "C" fn #trampoline(
                        context: *mut ::core::ffi::c_void,
                        #(#cb_abi),*
                    ) -> bool {
                        ::plugin_api::__private::iface::callback(|| {
                            // SAFETY: `context` is the `&mut` closure of the call below, which
                            // waits for the provider to return.
                            let f: &mut #ty = unsafe { &mut *context.cast::<#ty>() };
                            #(#cb_reads)*
                            Ok(f(#(#cb_names),*))
                        })
                    }
                });
            }
            passes.push(to_abi(p, arg_name, &trampoline));
        }
        let (out_decl, out_pass, out_value) = match &ret {
            Return::Unit => (quote!(), quote!(), quote!(Ok(()))),
            // Written by the provider when it returns `OK` (the interface's contract), read
            // only then: as a C out-parameter is.
            Return::Plain(t) => (
                quote!(let mut out = ::core::mem::MaybeUninit::<#t>::uninit();),
                quote!(out.as_mut_ptr(),),
                // SAFETY (of the generated block): the provider returned `OK`, so it wrote the
                // value (the interface's contract).
                quote!(Ok(unsafe { out.assume_init() })),
            ),
            Return::String => (
                quote!(let mut out = ::plugin_api::__private::iface::Collector::new();),
                quote!(&out.sink(),),
                quote!(out.into_string()),
            ),
            Return::Bytes => (
                quote!(let mut out = ::plugin_api::__private::iface::Collector::new();),
                quote!(&out.sink(),),
                quote!(Ok(out.into_bytes())),
            ),
            Return::OptionString => (
                quote!(let mut out = ::plugin_api::__private::iface::Collector::new();),
                quote!(&out.sink(),),
                quote!(out.into_option_string()),
            ),
            Return::OptionBytes => (
                quote!(let mut out = ::plugin_api::__private::iface::Collector::new();),
                quote!(&out.sink(),),
                quote!(Ok(out.into_option_bytes())),
            ),
        };
        let output_ty = &sig.output;
        caller_methods.push(quote! {
            #[allow(clippy::undocumented_unsafe_blocks)]
            #[inline]
            fn #name(&self, #(#rust_params),*) #output_ty {
                #(#trampolines)*
                let (table, user_data) = self.table()?;
                #out_decl
                let mut error = ::plugin_api::__private::iface::ErrorMessage::new();
                // SAFETY: the provider's function of this interface (the table is at least this
                // version's size), with its user data, alive (checked by `table`); the
                // arguments, sinks and closures outlive the call.
                let code = unsafe {
                    (table.#name)(user_data, #(#passes,)* #out_pass error.sink())
                };
                if code != ::plugin_api::abi::PhResult::Ok.code() {
                    return Err(error.into_error(#what, code));
                }
                #out_value
            }
        });
    }

    let table_doc = format!(
        "The function table of the interface `{}` {}.{} (`{}`): one function per method, each taking the provider's user data first, an out-parameter for the value, and a sink for the error message. Its abi_stable layout travels with each provision, and a Rust caller checks it against its own when it queries.",
        id.value(),
        major,
        minor,
        trait_name
    );
    Ok(quote! {
        #item

        #[doc = #table_doc]
        #[repr(C)]
        #[derive(Clone, Copy, ::abi_stable::StableAbi)]
        #vis struct #table {
            #(#fields)*
        }

        #(#wrappers)*

        #(#checks)*

        const _: () = {
            #(#provider_fns)*

            // SAFETY: the table is this interface's `#[repr(C)]` table, the same for every
            // provider and caller of this id and version.
            unsafe impl ::plugin_api::Interface for dyn #trait_name {
                const ID: &'static str = #id;
                const MAJOR: u16 = #major;
                const MINOR: u16 = #minor;
                const SIGNATURE: &'static str = #signature;
                type Table = #table;
            }

            // SAFETY: each function of the table reads its user data as a `*const S` and calls
            // `S`'s method in the panic boundary; `S: Trait` is `Send + Sync`, so it may be
            // called from any thread, several at once.
            unsafe impl<S: #trait_name> ::plugin_api::ProvidedBy<S> for dyn #trait_name {
                const TABLE: &'static #table = &#table {
                    #(#table_entries)*
                };
            }

            /// The provision of an `Arc<dyn Trait>`: forwards each call to the object.
            struct __Shared(::std::sync::Arc<dyn #trait_name>);

            impl #trait_name for __Shared {
                #(#forwarders)*
            }

            impl ::plugin_api::IntoProvision<dyn #trait_name> for ::std::sync::Arc<dyn #trait_name> {
                fn into_provision(self) -> ::plugin_api::Provision<dyn #trait_name> {
                    ::plugin_api::IntoProvision::into_provision(::std::sync::Arc::new(__Shared(self)))
                }
            }

            /// The plugin's own state as the provider (`Host::provide_state`): each method
            /// enters the call, then calls the state's.
            impl<S: #trait_name> #trait_name for ::plugin_api::OnState<S> {
                #(#state_forwarders)*
            }

            impl #trait_name for ::plugin_api::Remote<dyn #trait_name> {
                #(#caller_methods)*
            }
        };
    })
}

/// A type's tokens without spaces, and with the paths of `Result` and the error reduced to their
/// last segment, so that `plugin_api::Error` and `Error` compare equal.
fn compact(tokens: &str) -> String {
    let text: String = tokens.chars().filter(|c| !c.is_whitespace()).collect();
    text.replace("plugin_api::", "")
        .replace("::std::result::", "")
        .replace("std::result::", "")
        .replace("::core::result::", "")
        .replace("core::result::", "")
}
