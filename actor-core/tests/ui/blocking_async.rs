#[actor::remote(ns = "demo", blocking)]
async fn crunch(n: u64) -> u64 {
    n * 2
}

#[actor::service(ns = "demo")]
fn not_async_service() {}

fn main() {}
