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

/// The roles of the caller's account that `user_arn` may assume by their
/// trust policy (IAM ListRoles, every page): an Allow of sts:AssumeRole to
/// the user, the account (`ACCOUNT` or `arn:aws:iam::ACCOUNT:root`) or
/// anyone. Conditions are not evaluated (MFA, external IDs): a listed role
/// may still refuse, which AssumeRole then explains.
pub async fn assumable_roles(
    sdk: &Sdk,
    region: &str,
    from: &Session,
    user_arn: &str,
    account: &str,
) -> Result<Vec<String>, AwsError> {
    let client = client(sdk, region, from).await;
    let mut arns = Vec::new();
    let mut marker: Option<String> = None;
    // bounded: 1000 roles a page
    for _ in 0..100 {
        let out = client
            .list_roles()
            .set_marker(marker.take())
            .max_items(1000)
            .send()
            .await
            .map_err(|e| failed("ListRoles", e))?;
        for r in out.roles() {
            let doc = r.assume_role_policy_document().unwrap_or_default();
            if trusts(doc, user_arn, account) {
                arns.push(super::clean(r.arn(), 2048));
            }
        }
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    arns.sort();
    Ok(arns)
}

/// Whether a (URL-encoded or plain) trust policy allows `user_arn` to
/// assume the role.
pub(crate) fn trusts(doc: &str, user_arn: &str, account: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    let Ok(policy) = serde_json::from_str::<serde_json::Value>(&decoded)
        .or_else(|_| serde_json::from_str::<serde_json::Value>(doc))
    else {
        return false;
    };
    let list = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let statements = match policy.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(s @ serde_json::Value::Object(_)) => vec![s.clone()],
        _ => return false,
    };
    let root = format!("arn:aws:iam::{account}:root");
    statements.iter().any(|st| {
        st.get("Effect").and_then(|e| e.as_str()) == Some("Allow")
            && list(st.get("Action"))
                .iter()
                .any(|a| matches!(a.as_str(), "sts:AssumeRole" | "sts:*" | "*"))
            && match st.get("Principal") {
                Some(serde_json::Value::String(s)) => s == "*",
                Some(p) => list(p.get("AWS"))
                    .iter()
                    .any(|p| p == "*" || p == user_arn || p == &root || p == account),
                None => false,
            }
    })
}

#[cfg(test)]
mod trust_tests {
    use super::trusts;

    #[test]
    fn trust_policies_naming_the_user_or_account() {
        let user = "arn:aws:iam::123456789012:user/alice";
        let doc = |principal: &str, action: &str, effect: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Principal":{principal},"Action":{action}}}]}}"#
            )
        };
        let yes = [
            doc(
                &format!(r#"{{"AWS":"{user}"}}"#),
                r#""sts:AssumeRole""#,
                "Allow",
            ),
            doc(
                r#"{"AWS":["arn:aws:iam::123456789012:root"]}"#,
                r#"["sts:AssumeRole","sts:TagSession"]"#,
                "Allow",
            ),
            doc(r#"{"AWS":"123456789012"}"#, r#""sts:*""#, "Allow"),
        ];
        for d in &yes {
            assert!(trusts(d, user, "123456789012"), "{d}");
            let encoded =
                percent_encoding::utf8_percent_encode(d, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            assert!(trusts(&encoded, user, "123456789012"), "{encoded}");
        }
        let no = [
            doc(
                r#"{"AWS":"arn:aws:iam::123456789012:user/bob"}"#,
                r#""sts:AssumeRole""#,
                "Allow",
            ),
            doc(
                r#"{"Service":"eks.amazonaws.com"}"#,
                r#""sts:AssumeRole""#,
                "Allow",
            ),
            doc(
                &format!(r#"{{"AWS":"{user}"}}"#),
                r#""sts:AssumeRole""#,
                "Deny",
            ),
            doc(
                &format!(r#"{{"AWS":"{user}"}}"#),
                r#""sts:AssumeRoleWithWebIdentity""#,
                "Allow",
            ),
            "not json".to_string(),
        ];
        for d in &no {
            assert!(!trusts(d, user, "123456789012"), "{d}");
        }
    }
}
