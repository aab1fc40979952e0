//! NATS credentials per tenant, through the server's auth callout: a SIEM connects to NATS
//! with one of its tenant's `acp_` API keys (holding `audit.read`) as its password or token;
//! the server asks Aegis on `$SYS.REQ.USER.AUTH`, and Aegis answers with a user JWT, signed
//! by the account key the server trusts (`AEGIS_NATS_AUTH_SEED`), that may subscribe to
//! `aegis.evt.<its tenant>.>` and nothing else, and may publish nothing. Another tenant's
//! subjects, the JetStream API and every other subject are refused by the server itself.

use crate::auth::Principal;
use crate::state::AppState;
use aegis_identity::permissions::Permission;
use aegis_streams::subject::tenant_filter;
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::watch;

pub const AUTH_SUBJECT: &str = "$SYS.REQ.USER.AUTH";

/// The account a callout user is placed in: the one Aegis itself runs in.
pub const ACCOUNT: &str = "AEGIS";

/// The nats.conf block that turns per-tenant credentials on: Aegis connects as `aegis` (the
/// password goes in `NATS_URL`, `nats://aegis:<password>@host:port`) and answers the callout
/// for every other connection, which it places in its own account with its tenant's
/// permissions. `aegis nats-callout` prints it with a fresh issuer key.
pub fn conf_block(issuer_public: &str, app_password: &str) -> String {
    format!(
        r#"accounts {{
  {ACCOUNT} {{
    jetstream: enabled
    users: [ {{ user: aegis, password: "{app_password}" }} ]
  }}
  SYS {{}}
}}
system_account: SYS
authorization {{
  auth_callout {{
    issuer: {issuer_public}
    auth_users: [ aegis ]
    account: {ACCOUNT}
  }}
}}
"#
    )
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A NATS JWT (`ed25519-nkey`) with `claims`, signed by `issuer`.
pub fn encode(issuer: &nkeys::KeyPair, mut claims: Value) -> Result<String, String> {
    claims["iss"] = json!(issuer.public_key());
    claims["iat"] = json!(chrono::Utc::now().timestamp());
    claims["jti"] = json!(uuid::Uuid::now_v7().simple().to_string().to_uppercase());
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{body}");
    let signature = issuer
        .sign(signing_input.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

/// The claims of a NATS JWT (its signature is the server's; the subject it arrives on is only
/// reachable by the server and the callout user).
pub fn claims(jwt: &str) -> Option<Value> {
    let body = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Subjects a subscriber never receives: those of aggregates whose events carry credential
/// material (password hashes, key digests, sealed values). NATS delivers the log's commits as
/// stored, so they cannot be redacted on the way out; they are denied instead, and
/// `/events/stream` serves them with the material removed. Derived from the schema registry
/// (an event type's first word names its aggregate), so a new such event is denied at once.
pub fn withheld_subjects(tenant: uuid::Uuid) -> Vec<String> {
    let mut aggregates: Vec<&str> = aegis_schemas::events::EVENTS
        .iter()
        .filter(|(t, _)| aegis_schemas::events::carries_credentials(t))
        .filter_map(|(t, _)| t.split('.').next())
        .collect();
    aggregates.sort_unstable();
    aggregates.dedup();
    aggregates
        .into_iter()
        .map(|a| format!("aegis.evt.{tenant}.*.{a}.>"))
        .collect()
}

/// The user claims a tenant's subscriber gets.
pub fn user_claims(tenant: uuid::Uuid, user_nkey: &str, name: &str) -> Value {
    json!({
        "sub": user_nkey,
        "name": name,
        "aud": ACCOUNT,
        "nats": {
            "pub": { "deny": [">"] },
            "sub": { "allow": [tenant_filter(tenant, None)], "deny": withheld_subjects(tenant) },
            "subs": -1, "data": -1, "payload": -1,
            "type": "user",
            "version": 2,
        },
    })
}

/// Decides one authorization request: the user JWT to answer with, or why not.
async fn decide(
    state: &AppState,
    issuer: &nkeys::KeyPair,
    request: &Value,
) -> Result<String, String> {
    let opts = &request["nats"]["connect_opts"];
    let key = [&opts["pass"], &opts["auth_token"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|s| s.starts_with("acp_"))
        .ok_or("present a tenant's acp_ API key as the password or token")?;
    let principal: Principal = crate::auth::api_key(state, key)
        .await
        .map_err(|e| e.message)?;
    if !principal.permissions.contains(Permission::AuditRead) {
        return Err("the API key lacks audit.read".into());
    }
    let tenant = principal.home.ok_or("the API key belongs to no tenant")?;
    let user_nkey = request["nats"]["user_nkey"]
        .as_str()
        .ok_or("the request names no user nkey")?;
    let name = format!("tenant-{}-key-{}", tenant.0, principal.subject);
    encode(issuer, user_claims(tenant.0, user_nkey, &name))
}

/// Answers the server's authorization requests until `shutdown`.
pub async fn run(
    state: AppState,
    seed: String,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let issuer = nkeys::KeyPair::from_seed(&seed).map_err(|e| e.to_string())?;
    // A queue group: with several instances, one answers each request.
    let mut requests = state
        .nats
        .queue_subscribe(AUTH_SUBJECT, "aegis-nats-auth".into())
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let next = tokio::select! {
            m = requests.next() => m,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(msg) = next else {
            return Err("the auth callout subscription ended".into());
        };
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let request = std::str::from_utf8(&msg.payload)
            .ok()
            .and_then(claims)
            .unwrap_or(Value::Null);
        let (user_jwt, error) = match decide(&state, &issuer, &request).await {
            Ok(jwt) => (Some(jwt), None),
            Err(why) => {
                tracing::info!(error = %why, "NATS connection refused by the auth callout");
                (None, Some(why))
            }
        };
        let mut nats = json!({ "type": "authorization_response", "version": 2 });
        if let Some(jwt) = user_jwt {
            nats["jwt"] = json!(jwt);
        }
        if let Some(e) = error {
            nats["error"] = json!(e);
        }
        let response = json!({
            "sub": request["nats"]["user_nkey"],
            "aud": request["nats"]["server_id"]["id"],
            "nats": nats,
        });
        match encode(&issuer, response) {
            Ok(jwt) => {
                if let Err(e) = state.nats.publish(reply, jwt.into()).await {
                    tracing::warn!(error = %e, "cannot answer the auth callout");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot sign the auth callout answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_jwt_verifies_with_the_issuers_public_key() {
        let issuer = nkeys::KeyPair::new_account();
        let jwt = encode(&issuer, json!({"sub": "UXYZ"})).expect("signed");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .expect("base64url");
        let public = nkeys::KeyPair::from_public_key(&issuer.public_key()).expect("public");
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("verifies");
        let c = claims(&jwt).expect("claims");
        assert_eq!(c["iss"], issuer.public_key());
        assert_eq!(c["sub"], "UXYZ");
    }

    #[test]
    fn a_tenants_user_may_subscribe_to_its_subjects_only_and_publish_nothing() {
        let tenant = uuid::Uuid::from_u128(7);
        let c = user_claims(tenant, "UABC", "siem");
        assert_eq!(c["aud"], ACCOUNT);
        assert_eq!(
            c["nats"]["sub"]["allow"],
            json!([format!("aegis.evt.{tenant}.>")])
        );
        assert_eq!(c["nats"]["pub"]["deny"], json!([">"]));
        let denied = c["nats"]["sub"]["deny"].to_string();
        for aggregate in ["user", "api_key", "agent", "credential", "webhook", "siem"] {
            assert!(
                denied.contains(&format!("aegis.evt.{tenant}.*.{aggregate}.>")),
                "{aggregate}: {denied}"
            );
        }
        assert!(!denied.contains(".incident."), "{denied}");
    }
}
