//! Misuses of `#[actor::remote]` fail to compile, with an error at the user's span. Each
//! `tests/ui/*.rs` is one misuse; its `.stderr` is the expected diagnostic (regenerate with
//! `TRYBUILD=overwrite cargo test -p actor-core --test macro_ui`, then read every diff).

#[test]
fn misuses_are_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
