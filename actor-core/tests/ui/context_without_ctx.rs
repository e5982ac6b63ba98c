#[actor::remote(context)]
async fn start() -> i64 {
    1
}

fn main() {}
