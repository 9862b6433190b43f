//! The IAM calls of key rotation (ListAccessKeys, CreateAccessKey,
//! DeleteAccessKey, all on the calling user) and the check that a key works
//! (STS GetCallerIdentity signed with it).

use std::time::SystemTime;

use super::{describe, AwsError, Sdk, Session};
use crate::secret::LockedString;

async fn client(sdk: &Sdk, region: &str, from: &Session) -> aws_sdk_iam::Client {
    let conf = sdk.config(region).await;
    let conf = aws_sdk_iam::config::Builder::from(&conf)
        .credentials_provider(from.provider())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

fn failed<E>(
    call: &str,
    e: aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error,
{
    AwsError(format!("IAM {call} failed: {}", describe(&e)))
}

/// The calling user's access key IDs.
pub async fn list_keys(sdk: &Sdk, region: &str, from: &Session) -> Result<Vec<String>, AwsError> {
    let out = client(sdk, region, from)
        .await
        .list_access_keys()
        .send()
        .await
        .map_err(|e| failed("ListAccessKeys", e))?;
    Ok(out
        .access_key_metadata()
        .iter()
        .filter_map(|k| k.access_key_id().map(str::to_string))
        .collect())
}

/// A new access key for the calling user (as a [`Session`] without token).
pub async fn create_key(sdk: &Sdk, region: &str, from: &Session) -> Result<Session, AwsError> {
    let out = client(sdk, region, from)
        .await
        .create_access_key()
        .send()
        .await
        .map_err(|e| failed("CreateAccessKey", e))?;
    let k = out
        .access_key()
        .ok_or_else(|| AwsError("IAM CreateAccessKey returned no key".into()))?;
    Ok(Session {
        access_key_id: k.access_key_id().to_string(),
        secret_access_key: LockedString::new(k.secret_access_key()),
        session_token: None,
        expiration: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u32::MAX as u64),
    })
}

/// Deletes the calling user's access key `id`.
pub async fn delete_key(sdk: &Sdk, region: &str, from: &Session, id: &str) -> Result<(), AwsError> {
    client(sdk, region, from)
        .await
        .delete_access_key()
        .access_key_id(id)
        .send()
        .await
        .map_err(|e| failed("DeleteAccessKey", e))?;
    Ok(())
}

/// The ARN `key` authenticates as (GetCallerIdentity): proves the key works.
pub async fn caller_arn(sdk: &Sdk, region: &str, key: &Session) -> Result<String, AwsError> {
    let conf = sdk.config(region).await;
    let conf = aws_sdk_sts::config::Builder::from(&conf)
        .credentials_provider(key.provider())
        .build();
    let out = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError(format!("STS GetCallerIdentity failed: {}", describe(&e))))?;
    Ok(out.arn().unwrap_or_default().to_string())
}
