struct Counter;

impl Counter {
    #[actor::remote]
    async fn get(&self) -> i64 {
        1
    }
}

fn main() {}
