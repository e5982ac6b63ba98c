"""Python stand-ins for the Rust `demo` namespace served by the `daemon` example.

tractor 0.1.0a5 names a remote function by the module and name of a local function object
(and imports that module), so calling the Rust functions from Python goes through these
stubs: their bodies never run.
"""


async def count(n):
    """demo.count(n): a stream of 0..n (asyncgen)."""
    yield n


async def echo_ctx(ctx, start):
    """demo.echo_ctx(start): a context echoing its stream, returning "done"."""


echo_ctx._tractor_contex_function = True  # (sic) the attribute 0.1.0a5 checks
