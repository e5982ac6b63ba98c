#[derive(Debug)]
struct Oops;

#[actor::remote]
async fn risky(n: i64) -> Result<i64, Oops> {
    if n < 0 { Err(Oops) } else { Ok(n) }
}

fn main() {}
