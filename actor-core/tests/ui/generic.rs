#[actor::remote]
async fn first<T: serde::de::DeserializeOwned>(items: Vec<T>) -> Option<T> {
    items.into_iter().next()
}

fn main() {}
