struct Point {
    x: i64,
}

#[actor::remote]
async fn origin() -> Point {
    Point { x: 0 }
}

fn main() {}
