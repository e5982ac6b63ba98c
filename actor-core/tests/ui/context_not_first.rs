#[actor::remote]
async fn echo(start: i64, ctx: actor::Context) -> actor::Result<i64> {
    let _ = ctx;
    Ok(start)
}

fn main() {}
