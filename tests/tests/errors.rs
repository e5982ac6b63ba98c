//! Errors a user meets starting an actor say which actor, what failed, and what to do.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// A function, so namespace `errs` exists in this program.
#[actor::remote(ns = "errs")]
async fn nothing() {}

/// Text, where the caller below expects a number.
#[actor::remote(ns = "errs")]
async fn text() -> String {
    "forty-two".into()
}

/// A caller's idea of `errs.text` that disagrees with the program serving it.
#[derive(serde::Serialize)]
struct TextAsNumber {}

impl actor::RemoteFn for TextAsNumber {
    const NS: &'static str = "errs";
    const NAME: &'static str = "text";
    type Output = i64;
}

#[tokio::test]
async fn a_result_of_the_wrong_type_names_the_function_the_actor_and_the_type() {
    let server = actor::Actor::builder("server")
        .listen(actor::Addr::tcp("127.0.0.1", 0))
        .enable("errs")
        .start()
        .await
        .unwrap();
    let portal = actor::connect(&server.addrs()[0]).await.unwrap();
    let error = portal.run(TextAsNumber {}).await.expect_err("not a number");
    let text = error.to_string();
    assert!(text.contains("does not decode into `i64`"), "{text}");
    assert!(
        text.contains(&format!(
            "the result of `errs.text` from actor {}",
            server.uid()
        )),
        "{text}"
    );
    drop(portal);
    server.cancel();
    server.wait().await;
}

#[tokio::test]
async fn an_address_in_use_names_the_actor_the_address_and_the_way_out() {
    let first = actor::Actor::builder("first")
        .listen(actor::Addr::tcp("127.0.0.1", 0))
        .enable("errs")
        .start()
        .await
        .unwrap();
    let taken = first.addrs()[0].clone();
    let error = actor::Actor::builder("second")
        .listen(taken.clone())
        .enable("errs")
        .start()
        .await
        .expect_err("the address is taken");
    // Still an I/O error of its kind (a root falls back on it when its registrar's address
    // is taken), with the context in its text.
    let actor::Error::Io(io) = &error else {
        panic!("not an I/O error: {error:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse, "{io}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("actor `second` cannot listen on {taken}")),
        "{text}"
    );
    assert!(text.contains("pick another port, or port 0"), "{text}");
    first.cancel();
    first.wait().await;
}

#[tokio::test]
async fn a_namespace_without_functions_or_no_address_names_the_actor_and_the_fix() {
    let error = actor::Actor::builder("worker")
        .listen(actor::Addr::tcp("127.0.0.1", 0))
        .enable("nowhere")
        .start()
        .await
        .expect_err("no such namespace")
        .to_string();
    assert!(
        error.contains("actor `worker` cannot enable namespace `nowhere`")
            && error.contains("#[actor::remote(ns = \"nowhere\")]"),
        "{error}"
    );
    let error = actor::Actor::builder("worker")
        .enable("errs")
        .start()
        .await
        .expect_err("no address")
        .to_string();
    assert!(
        error.contains("actor `worker` has no address to listen on") && error.contains(".listen("),
        "{error}"
    );
}
