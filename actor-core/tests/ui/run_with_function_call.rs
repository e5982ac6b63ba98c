#[actor::remote(ns = "demo")]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

async fn caller(portal: actor::Portal) -> actor::Result<i64> {
    portal.run(add(1, 2)).await
}

fn main() {}
