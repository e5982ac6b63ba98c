use futures::Stream;

#[actor::remote(ns = "demo")]
fn count(n: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(0..n)
}

async fn caller(portal: actor::Portal) -> actor::Result<u64> {
    portal.run(count { n: 3 }).await
}

fn main() {}
