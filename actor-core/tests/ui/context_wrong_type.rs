#[actor::remote(context)]
async fn echo(start: i64) -> i64 {
    start
}

fn main() {}
