#[actor::remote(ns = "demo")]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

async fn caller(portal: actor::Portal) -> actor::Result<()> {
    let _stream = portal.open_stream_from(add { a: 1, b: 2 }).await?;
    Ok(())
}

fn main() {}
