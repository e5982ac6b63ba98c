#[actor::service(ns = "a", ns = "b")]
async fn flusher() {}

fn main() {}
