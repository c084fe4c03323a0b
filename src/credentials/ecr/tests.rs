//! ECR option handling: hosts, regions, account ids, the credential chain, role options.

use super::*;
use serde_json::json;

fn source(extra: serde_json::Value) -> Source {
    let mut value = json!({"repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"});
    if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        object.extend(extra.clone());
    }
    match serde_json::from_value(value) {
        Ok(source) => source,
        Err(e) => panic!("{e}"),
    }
}

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// `from_source` with a fixed environment; the error text on failure.
fn configured(source: &Source, host: &str, env: &[(&str, &str)]) -> Result<Ecr, String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match Ecr::from_source_with(source, host, lookup, &Default::default()) {
        Ok(Some(ecr)) => Ok(ecr),
        Ok(None) => Err("not configured".into()),
        Err(e) => Err(format!("{e:#}")),
    }
}

const KEYS: [(&str, &str); 2] = [
    ("aws_access_key_id", "AKIA1"),
    ("aws_secret_access_key", "s3cr3t"),
];

fn with_keys(extra: serde_json::Value) -> Source {
    let mut value = json!({});
    for (k, v) in KEYS {
        value[k] = json!(v);
    }
    if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        object.extend(extra.clone());
    }
    source(value)
}

#[test]
fn ecr_hosts() {
    assert_eq!(ecr_host(ECR_HOST), Some(("123456789012", "us-east-1")));
    assert_eq!(
        ecr_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com:443"),
        Some(("123456789012", "us-gov-west-1"))
    );
    assert_eq!(
        ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        Some(("123456789012", "cn-north-1"))
    );
    assert_eq!(
        ecr_host("123456789012.dkr-ecr.eu-west-1.on.aws"),
        Some(("123456789012", "eu-west-1"))
    );
    for other in [
        "registry-1.docker.io",
        "12345.dkr.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.us-east-1.example.com",
        "public.ecr.aws",
        "127.0.0.1:5000",
    ] {
        assert_eq!(ecr_host(other), None, "{other}");
    }
}

#[test]
fn regions() {
    for ok in ["us-east-1", "cn-north-1", "us-gov-west-1", "ap-southeast-2"] {
        assert!(valid_region(ok), "{ok}");
    }
    for bad in [
        "",
        "us-east",
        "US-EAST-1",
        "us_east_1",
        "us-east-1a",
        "-east-1",
    ] {
        assert!(!valid_region(bad), "{bad}");
    }
}

#[test]
fn not_wanted_without_aws_options() {
    let s = source(json!({}));
    assert!(!wanted(&s));
    assert!(matches!(
        Ecr::from_source(&s, ECR_HOST, &Default::default()),
        Ok(None)
    ));
    assert!(wanted(&source(json!({"aws_region": "us-east-1"}))));
    assert!(wanted(&source(json!({"aws_role_arns": ["r"]}))));
    assert!(!wanted(&source(json!({"aws_region": ""}))));
}

#[test]
fn region_from_option_host_or_environment() {
    let region = |s: &Source, host: &str, env: &[(&str, &str)]| {
        configured(s, host, env).map(|e| (e.caller.region().to_string(), e.region_from))
    };
    let keys = with_keys(json!({}));
    assert_eq!(
        region(&keys, ECR_HOST, &[]),
        Ok(("us-east-1".into(), format!("the registry host {ECR_HOST}")))
    );
    let local = "127.0.0.1:5000";
    assert_eq!(
        region(&keys, local, &[("AWS_DEFAULT_REGION", "eu-west-2")]),
        Ok(("eu-west-2".into(), "AWS_DEFAULT_REGION".into()))
    );
    let both = [
        ("AWS_DEFAULT_REGION", "eu-west-2"),
        ("AWS_REGION", "eu-west-3"),
    ];
    assert_eq!(
        region(&keys, local, &both),
        Ok(("eu-west-3".into(), "AWS_REGION".into()))
    );
    let option = with_keys(json!({"aws_region": "eu-central-1"}));
    assert_eq!(
        region(&option, local, &both),
        Ok(("eu-central-1".into(), "source.aws_region".into()))
    );
    // Docker Hub never gets ECR credentials.
    let hub = region(&keys, "registry-1.docker.io", &both).unwrap_err();
    assert!(hub.contains("never sent to Docker Hub"), "{hub}");
    // Absent, malformed, contradicting the host: errors naming aws_region.
    let absent = region(&keys, local, &[]).unwrap_err();
    assert!(
        absent.contains("no region")
            && absent.contains("source.aws_region")
            && absent.contains(local),
        "{absent}"
    );
    let malformed = with_keys(json!({"aws_region": "us-east"}));
    let err = region(&malformed, local, &[]).unwrap_err();
    assert!(
        err.contains("\"us-east\"") && err.contains("source.aws_region"),
        "{err}"
    );
    let other = with_keys(json!({"aws_region": "eu-west-1"}));
    let err = region(&other, ECR_HOST, &[]).unwrap_err();
    assert!(
        err.contains("source.aws_region (eu-west-1)") && err.contains("(us-east-1)"),
        "{err}"
    );
}

#[test]
fn credential_chain() {
    let base = |s: &Source, env: &[(&str, &str)]| configured(s, ECR_HOST, env).map(|e| e.base);
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ("AWS_SESSION_TOKEN", "envtoken"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web"),
    ];
    // Options first.
    match base(&with_keys(json!({"aws_session_token": "t"})), &env) {
        Ok(Base::Source(keys)) => {
            assert_eq!(keys.access_key_id, "AKIA1");
            assert_eq!(
                keys.session_token.map(|t| t.expose().to_string()),
                Some("t".into())
            );
        }
        other => panic!("{other:?}"),
    }
    // Then the environment's keys, then web identity.
    let bare = source(json!({"aws_region": "us-east-1"}));
    assert!(matches!(base(&bare, &env), Ok(Base::Environment(k)) if k.access_key_id == "AKIAENV"));
    match base(&bare, &env[3..]) {
        Ok(Base::WebIdentity {
            role_arn,
            session_name,
            ..
        }) => {
            assert_eq!(role_arn, "arn:aws:iam::123456789012:role/web");
            assert_eq!(session_name, aws::SESSION_NAME);
        }
        other => panic!("{other:?}"),
    }
    // Then container credentials, then the instance profile, unless disabled.
    let container = [(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "/v2/credentials/abc",
    )];
    match base(&bare, &container) {
        Ok(Base::Container { url, .. }) => {
            assert_eq!(url.as_str(), "http://169.254.170.2/v2/credentials/abc")
        }
        other => panic!("{other:?}"),
    }
    let unsafe_url = [(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://example.com/creds",
    )];
    assert!(base(&bare, &unsafe_url).is_err_and(|e| e.contains("must be https")));
    match base(&bare, &[]) {
        Ok(Base::InstanceMetadata { endpoint }) => {
            assert_eq!(endpoint.as_str(), "http://169.254.169.254/")
        }
        other => panic!("{other:?}"),
    }
    let none = base(&bare, &[("AWS_EC2_METADATA_DISABLED", "true")]).unwrap_err();
    assert!(
        none.contains("no AWS credentials") && none.contains("aws_access_key_id"),
        "{none}"
    );
    // Half of a key pair is an error naming both options.
    let half = source(json!({"aws_access_key_id": "AKIA1"}));
    let err = base(&half, &env).unwrap_err();
    assert!(err.contains("source.aws_secret_access_key is not"), "{err}");
    let half = source(json!({"aws_secret_access_key": "s"}));
    assert!(base(&half, &env)
        .unwrap_err()
        .contains("source.aws_access_key_id is not"));
    // No secret in Debug.
    let shown = format!("{:?}", configured(&with_keys(json!({})), ECR_HOST, &[]));
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

#[test]
fn roles_and_accounts() {
    let roles = |s: &Source| configured(s, ECR_HOST, &[]).map(|e| e.roles);
    assert_eq!(
        roles(&with_keys(json!({"aws_role_arn": "a"}))),
        Ok(vec!["a".to_string()])
    );
    assert_eq!(
        roles(&with_keys(json!({"aws_role_arns": ["a", "b"]}))),
        Ok(vec!["a".to_string(), "b".to_string()])
    );
    let both = roles(&with_keys(
        json!({"aws_role_arn": "a", "aws_role_arns": ["b"]}),
    ))
    .unwrap_err();
    assert!(
        both.contains("aws_role_arn and source.aws_role_arns are both set"),
        "{both}"
    );

    let account = |extra| {
        account_id(&source(extra))
            .map(|a| a.map(str::to_string))
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        account(json!({"aws_account_id": "012345678901"})),
        Ok(Some("012345678901".into()))
    );
    assert_eq!(
        account(json!({"aws_ecr_registry_id": "012345678901"})),
        Ok(Some("012345678901".into()))
    );
    assert_eq!(
        account(json!({"aws_account_id": 123456789012_u64})),
        Ok(Some("123456789012".into()))
    );
    assert_eq!(
        account(json!({"aws_account_id": "012345678901", "aws_ecr_registry_id": "012345678901"})),
        Ok(Some("012345678901".into()))
    );
    let differ =
        account(json!({"aws_account_id": "012345678901", "aws_ecr_registry_id": "111111111111"}));
    assert!(differ.is_err_and(|e| e.contains("disagree")));
    let short = account(json!({"aws_ecr_registry_id": "1234"}));
    assert!(
        short.is_err_and(|e| e.contains("source.aws_ecr_registry_id") && e.contains("12 digits"))
    );
}

#[test]
fn serves_the_origin_and_ecr_hosts_of_its_region() {
    let ecr = configured(
        &with_keys(json!({"aws_region": "us-east-1"})),
        "127.0.0.1:5000",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(ecr.serves("127.0.0.1:5000"));
    assert!(ecr.serves("999999999999.dkr.ecr.us-east-1.amazonaws.com"));
    assert!(!ecr.serves("999999999999.dkr.ecr.eu-west-1.amazonaws.com"));
    assert!(!ecr.serves("registry-1.docker.io"));
}
