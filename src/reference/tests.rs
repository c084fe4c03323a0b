//! Unit tests of reference parsing and normalisation.
use super::*;

const HEX64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn shown(input: &str) -> String {
    match Reference::parse(input) {
        Ok(r) => r.to_string(),
        Err(e) => panic!("{input}: {e}"),
    }
}

fn reason(input: &str) -> String {
    match Reference::parse(input) {
        Ok(r) => panic!("{input} parsed as {r}"),
        Err(e) => {
            assert_eq!(e.input, input);
            e.reason
        }
    }
}

#[test]
fn required_vectors() {
    assert_eq!(shown("golang"), "docker.io/library/golang:latest");
    assert_eq!(shown("library/golang:1.7"), "docker.io/library/golang:1.7");
    assert_eq!(
        shown("index.docker.io/library/golang"),
        "docker.io/library/golang:latest"
    );
    assert_eq!(
        shown("docker.company.com/golang"),
        "docker.company.com/golang:latest"
    );
    let with_digest = format!("localhost:5000/a/b@sha256:{HEX64}");
    assert_eq!(shown(&with_digest), with_digest);
    assert!(Reference::parse("Golang").is_err());
    assert!(Reference::parse("a//b").is_err());
    let hub = Reference::parse("golang").unwrap();
    assert_eq!(hub.api_host(), "registry-1.docker.io");
    assert!(hub.is_docker_hub());
}

#[test]
fn normalisation_table() {
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("golang", "docker.io", "library/golang", None),
        (
            "golang:1.21-alpine",
            "docker.io",
            "library/golang",
            Some("1.21-alpine"),
        ),
        ("docker.io/golang", "docker.io", "library/golang", None),
        (
            "index.docker.io/golang",
            "docker.io",
            "library/golang",
            None,
        ),
        (
            "concourse/concourse",
            "docker.io",
            "concourse/concourse",
            None,
        ),
        (
            "docker.io/concourse/concourse:7",
            "docker.io",
            "concourse/concourse",
            Some("7"),
        ),
        (
            "registry-1.docker.io/library/x",
            "registry-1.docker.io",
            "library/x",
            None,
        ),
        ("localhost/x", "localhost", "x", None),
        ("localhost:5000/x", "localhost:5000", "x", None),
        ("localhost:5000/x:v1", "localhost:5000", "x", Some("v1")),
        ("localhost", "docker.io", "library/localhost", None),
        (
            "localhost:5000",
            "docker.io",
            "library/localhost",
            Some("5000"),
        ),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", None),
        ("10.0.0.1/x", "10.0.0.1", "x", None),
        ("[::1]:5000/x", "[::1]:5000", "x", None),
        ("[fe80::1]/x:t", "[fe80::1]", "x", Some("t")),
        (
            "gcr.io/project/sub/image:tag",
            "gcr.io",
            "project/sub/image",
            Some("tag"),
        ),
        ("Registry.Example.COM/x", "Registry.Example.COM", "x", None),
        (
            "my-registry.example.com:443/a",
            "my-registry.example.com:443",
            "a",
            None,
        ),
        ("host:1/a", "host:1", "a", None),
        (
            "a__b/c--d/e.f/g_h/i---j",
            "docker.io",
            "a__b/c--d/e.f/g_h/i---j",
            None,
        ),
        ("a/b/c/d/e/f", "docker.io", "a/b/c/d/e/f", None),
        ("x:_under", "docker.io", "library/x", Some("_under")),
        ("x:V1.0_RC-2", "docker.io", "library/x", Some("V1.0_RC-2")),
        ("docker.io", "docker.io", "library/docker.io", None),
    ];
    for &(input, registry, repository, tag) in cases {
        let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest(), None, "{input}");
    }
}

#[test]
fn api_host_and_name() {
    let r = Reference::parse("localhost:5000/a/b:1").unwrap();
    assert_eq!(r.api_host(), "localhost:5000");
    assert_eq!(r.name(), "localhost:5000/a/b");
    assert!(!r.is_docker_hub());
    let hub = Reference::parse("index.docker.io/golang:1").unwrap();
    assert_eq!(hub.api_host(), DOCKER_HUB_API);
    assert_eq!(hub.name(), "docker.io/library/golang");
    let legacy = Reference::parse("registry-1.docker.io/golang").unwrap();
    assert!(!legacy.is_docker_hub());
    assert_eq!(legacy.repository(), "golang");
}

#[test]
fn tag_and_digest_together() {
    let input = format!("quay.io/a/b:v2@sha256:{HEX64}");
    let r = Reference::parse(&input).unwrap();
    assert_eq!(r.tag(), Some("v2"));
    assert_eq!(r.digest(), Some(format!("sha256:{HEX64}").as_str()));
    assert_eq!(r.to_string(), input);
    assert_eq!(r.reference_string(), format!("sha256:{HEX64}"));
    let digest_only = Reference::parse(&format!("golang@sha256:{HEX64}")).unwrap();
    assert_eq!(
        digest_only.to_string(),
        format!("docker.io/library/golang@sha256:{HEX64}")
    );
    assert_eq!(digest_only.tag(), None);
}

#[test]
fn digest_algorithms() {
    let sha512 = format!("sha512:{HEX64}{HEX64}");
    assert!(validate_digest(&sha512).is_ok());
    assert!(validate_digest(&format!("sha384:{HEX64}{}", &HEX64[..32])).is_ok());
    assert!(validate_digest(&format!("sha256:{HEX64}")).is_ok());
    assert!(validate_digest("blake3:0123456789ABCDEF0123456789abcdef").is_ok());
    assert!(validate_digest("multi+part.alg_x-y:0123456789abcdef0123456789abcdef").is_ok());
    for bad in [
        "sha256".to_string(),
        format!("sha256:{}", &HEX64[..63]),
        format!("sha256:{}", HEX64.to_uppercase()),
        format!("sha256:{HEX64}0"),
        format!("sha512:{HEX64}"),
        "md5:0123".to_string(),
        "blake3:0123456789abcdef0123456789abcdeg".to_string(),
        format!("1sha:{HEX64}"),
        format!(":{HEX64}"),
        format!("sha256+:{HEX64}"),
        "sha256:".to_string(),
    ] {
        assert!(validate_digest(&bad).is_err(), "{bad}");
    }
}

#[test]
fn tags() {
    assert!(validate_tag("latest").is_ok());
    assert!(validate_tag("1.10").is_ok());
    assert!(validate_tag(&"a".repeat(128)).is_ok());
    assert!(validate_tag(&"a".repeat(129))
        .unwrap_err()
        .reason
        .contains("128"));
    assert!(validate_tag("").unwrap_err().reason.contains("empty"));
    assert!(validate_tag(".x").unwrap_err().reason.contains("start"));
    assert!(validate_tag("-x").is_err());
    assert!(validate_tag("a+b").unwrap_err().reason.contains("'+'"));
    assert!(validate_tag("a/b").is_err());
    assert!(validate_tag("é").is_err());
}

#[test]
fn errors_explain() {
    assert!(reason("").contains("empty"));
    let upper = reason("Golang");
    assert!(upper.contains("lowercase"), "{upper}");
    assert!(upper.contains("\"golang\""), "{upper}");
    let upper = reason("gcr.io/My/Image:V1");
    assert!(upper.contains("\"gcr.io/my/image:V1\""), "{upper}");
    assert!(reason("a//b").contains("empty path component"));
    assert!(reason("/a").contains("empty path component"));
    assert!(reason("a/").contains("empty path component"));
    assert!(reason("golang:").contains("tag is empty"));
    assert!(reason("localhost:5000/x:").contains("tag is empty"));
    assert!(reason("golang:a:b").contains("':'"));
    assert!(reason("golang@").contains("digest"));
    assert!(reason("golang@sha256:abc").contains("64"));
    assert!(reason("golang@@sha256:abc").contains("algorithm"));
    assert!(reason("docker.io/").contains("path after the registry is missing"));
    assert!(reason(":tag").contains("missing"));
    assert!(reason("@sha256:x").contains("missing"));
    assert!(reason("a b").contains("whitespace"));
    assert!(reason(HEX64).contains("image ID"));
    assert!(reason("a$b").contains("'$'"));
    assert!(reason("a/-b").contains("start and end"));
    assert!(reason("a/b_").contains("start and end"));
    assert!(reason("a___b").contains("\"___\""));
    assert!(reason("a._b").contains("separator"));
    assert!(reason("a..b").contains("separator"));
    assert!(reason("my_host:port/x").contains("invalid registry"));
    assert!(reason("host:/x").contains("port"));
    assert!(reason("host:12a/x").contains("port"));
    assert!(reason("-host.com/x").contains("invalid registry"));
    assert!(reason("a..com/x").contains("invalid registry"));
    assert!(reason("[::1/x").contains("invalid registry"));
    assert!(reason("[zz::1]/x").contains("IPv6"));
    assert!(reason("[::1]x/x").contains("invalid registry"));
    assert!(reason("host.com:1:2/x").contains("port"));
}

#[test]
fn name_length_limit() {
    let long = format!(
        "example.com/{}",
        "a".repeat(NAME_MAX - "example.com/".len())
    );
    assert!(Reference::parse(&long).is_ok());
    let too_long = format!("{long}b");
    assert!(reason(&too_long).contains("255"));
    let hub = format!("x/{}", "a".repeat(NAME_MAX - "docker.io/x/".len() + 1));
    assert!(reason(&hub).contains("255"));
}

#[test]
fn with_tag_and_digest() {
    let digest = format!("sha256:{HEX64}");
    let r = Reference::parse("golang:1.7").unwrap();
    let r = r.with_tag("1.8").unwrap();
    assert_eq!(r.tag(), Some("1.8"));
    assert_eq!(r.reference_string(), "1.8");
    let r = Reference::parse(&format!("golang:1.8@{digest}")).unwrap();
    assert_eq!(r.tag(), Some("1.8"));
    assert_eq!(r.reference_string(), digest);
    let r = r.with_tag("1.9").unwrap();
    assert_eq!(r.digest(), Some(digest.as_str()));
    assert_eq!(
        r.to_string(),
        format!("docker.io/library/golang:1.9@{digest}")
    );
    let plain = Reference::parse("golang").unwrap();
    assert_eq!(plain.reference_string(), "latest");
    assert_eq!(
        plain.clone().with_tag("bad tag").unwrap_err().input,
        "bad tag"
    );
    assert!(plain.with_tag("").is_err());
}

#[test]
fn error_display_names_input() {
    let e = Reference::parse("a//b").unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("invalid image reference \"a//b\": "),
        "{text}"
    );
}
