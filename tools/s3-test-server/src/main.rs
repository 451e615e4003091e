//! s3s-fs with ETags in its listings.
//!
//! s3s-fs checks SigV4 signatures (headers and presigned URLs), does multipart
//! uploads and keeps each object's ETag, but leaves the ETag out of
//! ListObjectsV2 answers, where S3, MinIO and Garage all give it. babelcast's
//! mirror tells changed files from unchanged ones by the listed ETag, so without
//! it every pull would fetch everything again. This wrapper answers each listing
//! from s3s-fs and fills every entry's ETag from s3s-fs's own HEAD answer for that
//! key; every other operation the tests use goes to s3s-fs unchanged.
//!
//! Usage: `S3_ACCESS_KEY=… S3_SECRET_KEY=… s3-test-server 127.0.0.1:39000 ROOT`,
//! where each folder of ROOT is a bucket. The key comes from the environment so
//! that it does not show in the process list.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;

struct Listed(FileSystem);

/// The S3 impl: the named operations go to s3s-fs as they are, then the ones
/// written out. (One macro around the whole impl, since `async_trait` rewrites
/// the methods it sees and would not see those a macro inside it makes.)
macro_rules! s3_impl {
    ({ $($op:ident: $input:ty => $output:ty,)* } $($own:item)*) => {
        #[async_trait::async_trait]
        impl S3 for Listed {
            $(async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                self.0.$op(req).await
            })*
            $($own)*
        }
    };
}

s3_impl! {
    {
        head_bucket: HeadBucketInput => HeadBucketOutput,
        list_buckets: ListBucketsInput => ListBucketsOutput,
        create_bucket: CreateBucketInput => CreateBucketOutput,
        head_object: HeadObjectInput => HeadObjectOutput,
        get_object: GetObjectInput => GetObjectOutput,
        put_object: PutObjectInput => PutObjectOutput,
        copy_object: CopyObjectInput => CopyObjectOutput,
        delete_object: DeleteObjectInput => DeleteObjectOutput,
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
        upload_part: UploadPartInput => UploadPartOutput,
        complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
        list_parts: ListPartsInput => ListPartsOutput,
        list_objects: ListObjectsInput => ListObjectsOutput,
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let bucket = req.input.bucket.clone();
        let mut listed = self.0.list_objects_v2(req.clone()).await?;
        for object in listed.output.contents.iter_mut().flatten() {
            let Some(key) = object.key.clone() else { continue };
            let input = HeadObjectInput::builder().bucket(bucket.clone()).key(key).build().map_err(|e| s3s::s3_error!(InternalError, "{e}"))?;
            let head = self.0.head_object(req.clone().map_input(|_| input)).await?;
            object.e_tag = head.output.e_tag;
        }
        Ok(listed)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: S3_ACCESS_KEY=… S3_SECRET_KEY=… s3-test-server HOST:PORT ROOT";
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(root), None) = (args.next(), args.next(), args.next()) else {
        return Err(usage.into());
    };
    let (Ok(key), Ok(secret)) = (std::env::var("S3_ACCESS_KEY"), std::env::var("S3_SECRET_KEY")) else {
        return Err(usage.into());
    };
    let mut builder =
        S3ServiceBuilder::new(Listed(FileSystem::new(&root).map_err(|e| format!("{root}: {e:?}"))?));
    builder.set_auth(s3s::auth::SimpleAuth::from_single(key, secret));
    let service = builder.build();

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("s3-test-server: listening on http://{addr}, buckets in {root}");
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => { eprintln!("s3-test-server: accept: {err}"); continue; }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
