use futures::Stream;

#[actor::remote]
async fn count(n: u64) -> impl Stream<Item = u64> {
    futures::stream::iter(0..n)
}

fn main() {}
