#[cfg(test)]
mod dbg_tests {
    #[tokio::test]
    async fn dbg_call() {
        let r = super::call("http://127.0.0.1:18765/federation?x=1").await;
        eprintln!("{:?}", r.map(|s| s.to_string()));
    }
}
