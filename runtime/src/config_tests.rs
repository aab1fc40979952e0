//! Configuration: layering and refusals.

use super::*;

#[test]
fn environment_overrides_defaults() {
    let mut c = Config::default();
    c.apply_env(|k| match k {
        "AEGIS_HTTP_ADDR" => Some("127.0.0.1:0".into()),
        "AEGIS_EGRESS_ALLOW" => Some("127.0.0.1, hooks.local".into()),
        _ => None,
    })
    .expect("valid env");
    assert_eq!(c.http_addr.port(), 0);
    assert_eq!(c.egress_allow, vec!["127.0.0.1", "hooks.local"]);
}

#[test]
fn a_short_master_key_is_refused() {
    let c = Config {
        master_key: Some(Secret::new("c2hvcnQ=")),
        ..Config::default()
    };
    assert!(c.validate().is_err());
}

#[test]
fn secrets_do_not_print() {
    let c = Config {
        bootstrap_token: Some(Secret::new("super-secret-token-value")),
        ..Config::default()
    };
    assert!(!format!("{c:?}").contains("super-secret"));
}
