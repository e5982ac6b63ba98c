#[actor::remote(ns = "demo", started = i64)]
async fn echo(ctx: actor::Context, first: i64) -> actor::Result<()> {
    ctx.started(first).await
}

async fn caller(portal: actor::Portal) -> actor::Result<()> {
    let (_ctx, first): (actor::Context, String) = portal.open_context(echo { first: 1 }).await?;
    drop(first);
    Ok(())
}

fn main() {}
