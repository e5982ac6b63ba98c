use futures::Stream;

struct Point {
    x: i64,
}

#[actor::remote]
fn points(n: i64) -> impl Stream<Item = Point> + Send + 'static {
    futures::stream::iter((0..n).map(|x| Point { x }))
}

fn main() {}
