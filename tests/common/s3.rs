//! moto's S3 server on loopback (from the test clients' Python environment, `scripts/setup.sh`), for the tests of
//! servers sharing a bucket.

use std::time::Duration;

/// moto's S3 server with one bucket.
pub struct S3 {
    _client: super::PythonClient,
    endpoint: String,
}

impl S3 {
    pub async fn start(bucket: &str) -> Self {
        let client = super::PythonClient::start("s3_server.py", &[bucket], Duration::from_secs(60)).await;
        let endpoint = client.ready["endpoint"].as_str().expect("the S3 server prints its endpoint").to_string();
        Self { _client: client, endpoint }
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
