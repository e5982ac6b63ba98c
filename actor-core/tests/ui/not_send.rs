use std::rc::Rc;

#[actor::remote]
async fn hold(n: i64) -> i64 {
    let shared = Rc::new(n);
    tokio::task::yield_now().await;
    *shared
}

fn main() {}
