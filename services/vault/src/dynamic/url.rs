//! An admin connection's URL, parsed: where it goes and as whom. One reading for every
//! backend; each names its schemes and default port.

use super::DynamicError;
use zeroize::Zeroizing;

pub(super) struct Target {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) database: String,
    pub(super) user: String,
    pub(super) password: Zeroizing<String>,
}

impl Target {
    /// `scheme://user:password@host:port/database`, the user required, the rest
    /// percent-decoded.
    pub(super) fn parse(
        connection: &str,
        schemes: &[&str],
        default_port: u16,
    ) -> Result<Target, DynamicError> {
        let url = reqwest::Url::parse(connection).map_err(|_| DynamicError::BadConnection)?;
        if !schemes.contains(&url.scheme()) || url.username().is_empty() {
            return Err(DynamicError::BadConnection);
        }
        let decode = |s: &str| percent_decode(s).ok_or(DynamicError::BadConnection);
        Ok(Target {
            host: url
                .host_str()
                .ok_or(DynamicError::BadConnection)?
                .to_string(),
            port: url.port().unwrap_or(default_port),
            database: decode(url.path().trim_start_matches('/'))?,
            user: decode(url.username())?,
            password: Zeroizing::new(decode(url.password().unwrap_or_default())?),
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
