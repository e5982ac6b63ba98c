#[actor::service(ns = "svc", blocking, blocking)]
fn flusher() {}

fn main() {}
