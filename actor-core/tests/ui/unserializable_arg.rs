struct Point {
    x: i64,
}

#[actor::remote]
async fn norm(p: Point) -> i64 {
    p.x.abs()
}

fn main() {}
