//! The test S3 server of `scripts/test-services.sh`, shared by the tests and the bench.

use babelcast_store::remote::S3Config;

/// The bucket `babelcast-test` on 127.0.0.1:39000 with the fixed test key.
pub fn s3_server() -> S3Config {
    S3Config {
        endpoint: "http://127.0.0.1:39000".into(),
        bucket: "babelcast-test".into(),
        region: "garage".into(),
        access_key_id: "GK0123456789abcdef01234567".into(),
        secret_access_key: babelcast_core::Secret::new(
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        path_style: true,
        presigned_playback: false,
    }
}
