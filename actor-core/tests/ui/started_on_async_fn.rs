#[actor::remote(ns = "demo", started = i64)]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
