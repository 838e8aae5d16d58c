//! moto's S3 server on loopback (from the test clients' Python environment, `scripts/setup.sh`), for the tests of
//! servers sharing a bucket.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// moto's S3 server with one bucket.
pub struct S3 {
    _child: Child,
    endpoint: String,
}

impl S3 {
    pub async fn start(bucket: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/s3_server.py");
        let mut child = Command::new(super::test_python())
            .args([script, bucket])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap();
        let endpoint = serde_json::from_str::<Value>(&first.expect("the S3 server prints its endpoint")).unwrap()
            ["endpoint"]
            .as_str()
            .unwrap()
            .to_string();
        Self { _child: child, endpoint }
    }

    /// The environment a server needs to reach the bucket: the usual AWS variables.
    pub fn env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
    }
}
