//! The SSRF guard for every outbound call a tenant can aim (rotation endpoints, Postgres
//! targets, n8n, health URLs). A host is resolved once, every address it resolves to must be
//! public unless `AEGIS_EGRESS_ALLOW` names the host or a range holding the address, and the
//! caller then dials exactly the addresses checked, so a DNS answer cannot change in between.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EgressError {
    #[error("`{host}` resolves to {addr}, a {kind} address: outbound calls to it are refused (AEGIS_EGRESS_ALLOW can allow it)")]
    Refused {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
    #[error("outbound calls are turned off on this server (AEGIS_EGRESS_OFF)")]
    Off,
    #[error("cannot resolve `{0}`")]
    Unresolved(String),
    /// The URL itself is never displayed: a webhook URL or a query string can carry a token.
    #[error("not a usable URL: {1}")]
    BadUrl(String, String),
}

/// Resolves names; tests swap in a stub so no DNS query or connection ever leaves the machine.
pub trait Resolver: Send + Sync {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send;
}

pub struct SystemResolver;

impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// What kind of address this is, when it is not a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some("documentation")
            } else if seg[0] == 0x0064 && seg[1] == 0xff9b {
                // NAT64 embeds an IPv4 address; judge that one.
                v4_kind(embedded(seg[6], seg[7]))
            } else if seg[..6].iter().all(|s| *s == 0) {
                // IPv4-compatible `::a.b.c.d` (deprecated; some stacks still route it to the
                // IPv4 address): judged as that address, and never public itself.
                v4_kind(embedded(seg[6], seg[7])).or(Some("IPv4-compatible (deprecated)"))
            } else if seg[0] == 0x2002 {
                // 6to4 carries the relay's IPv4 address in the next 32 bits.
                v4_kind(embedded(seg[1], seg[2]))
            } else if seg[0] == 0x2001 && seg[1] == 0 {
                // Teredo tunnels to an IPv4 host hidden in the address: never dialled.
                Some("Teredo tunnel")
            } else {
                None
            }
        }
    }
}

fn embedded(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("reserved")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
        Some("benchmarking")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignment")
    } else {
        None
    }
}

/// One `AEGIS_EGRESS_ALLOW` entry: a host name, an address, or a CIDR range.
fn allows(entry: &str, host: &str, ip: IpAddr) -> bool {
    if entry.eq_ignore_ascii_case(host) {
        return true;
    }
    match entry.split_once('/') {
        Some((net, bits)) => {
            let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
                return false;
            };
            match (net, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
                    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            }
        }
        None => entry.parse::<IpAddr>() == Ok(ip),
    }
}

/// Resolves `host` and returns the addresses a caller may dial, or why not. `allow` is
/// `None` when outbound calls are off altogether: then nothing is resolved either.
pub async fn check(
    resolver: &impl Resolver,
    allow: Option<&[String]>,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, EgressError> {
    let allow = allow.ok_or(EgressError::Off)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolver
            .resolve(bare, port)
            .await
            .map_err(|_| EgressError::Unresolved(bare.to_string()))?,
    };
    if addrs.is_empty() {
        return Err(EgressError::Unresolved(bare.to_string()));
    }
    for a in &addrs {
        let ip = a.ip();
        if let Some(kind) = non_public(ip) {
            if !allow.iter().any(|e| allows(e, bare, ip)) {
                return Err(EgressError::Refused {
                    host: bare.to_string(),
                    addr: ip,
                    kind,
                });
            }
        }
    }
    Ok(addrs)
}

/// An HTTP client that dials only what [`check`] allowed for `url`, follows no redirect
/// (a redirect could point anywhere) and gives up after `timeout`.
pub async fn http_client(
    resolver: &impl Resolver,
    allow: Option<&[String]>,
    url: &str,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, EgressError> {
    let (host, addrs) = check_url(resolver, allow, url).await?;
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .resolve_to_addrs(host.trim_start_matches('[').trim_end_matches(']'), &addrs)
        .no_proxy()
        .build()
        .map_err(|e| EgressError::BadUrl(url.into(), e.to_string()))
}

/// Checks a whole URL: its shape ([`parse_url`]), then every address its host resolves to
/// ([`check`]). The host is the URL parser's own reading of it, so decimal, octal and hex
/// forms of an address (`http://2130706433/`, `http://0x7f.1/`) are judged as the address
/// they are. Returns the host and the addresses a client may dial.
pub async fn check_url(
    resolver: &impl Resolver,
    allow: Option<&[String]>,
    url: &str,
) -> Result<(String, Vec<SocketAddr>), EgressError> {
    parse_url(url)?;
    let (parsed, host) = http_url(url)?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs = check(resolver, allow, &host, port).await?;
    Ok((host, addrs))
}

/// An http(s) URL with a host, and that host.
fn http_url(url: &str) -> Result<(reqwest::Url, String), EgressError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| EgressError::BadUrl(url.into(), e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(EgressError::BadUrl(
            url.into(),
            "only http and https".into(),
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| EgressError::BadUrl(url.into(), "no host".into()))?
        .to_string();
    Ok((parsed, host))
}

/// The most bytes of an answer a tenant-aimed server may make Aegis hold: rotation answers,
/// n8n listings and threat-intel records are all far smaller.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("reading the answer failed: {0}")]
    Read(String),
    #[error("the answer is not the JSON expected: {0}")]
    Json(String),
}

/// Reads a JSON answer of at most [`MAX_ANSWER_BYTES`], chunk by chunk: a server that streams
/// without end is cut off at the cap, never buffered whole.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    mut response: reqwest::Response,
) -> Result<T, AnswerError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(AnswerError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| AnswerError::Read(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(AnswerError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| AnswerError::Json(e.to_string()))
}

/// Validates an outbound URL's shape when it is configured (the address is checked at use).
pub fn parse_url(url: &str) -> Result<(), EgressError> {
    let (parsed, _) = http_url(url)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(EgressError::BadUrl(
            url.into(),
            "credentials do not belong in a URL".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a table and records nothing else: no test here dials or queries DNS.
    struct Stub(Vec<(&'static str, &'static str)>);

    impl Resolver for Stub {
        async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            Ok(self
                .0
                .iter()
                .filter(|(h, _)| *h == host)
                .filter_map(|(_, ip)| ip.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, port))
                .collect())
        }
    }

    #[tokio::test]
    async fn private_and_special_addresses_are_refused_without_dialling() {
        let stub = Stub(vec![
            ("metadata.internal", "169.254.169.254"),
            ("intranet", "10.1.2.3"),
            ("corp", "172.20.0.1"),
            ("home", "192.168.1.1"),
            ("cgnat", "100.64.0.1"),
            ("v6local", "fd00::1"),
            ("mapped", "::ffff:10.0.0.1"),
            ("nat64", "64:ff9b::a00:1"),
            ("rebind", "93.184.216.34"),
            ("rebind", "127.0.0.1"),
            ("public", "93.184.216.34"),
        ]);
        for host in [
            "metadata.internal",
            "intranet",
            "corp",
            "home",
            "cgnat",
            "v6local",
            "mapped",
            "nat64",
            "rebind",
            "127.0.0.1",
            "[::1]",
            "0.0.0.0",
        ] {
            let got = check(&stub, Some(&[]), host, 80).await;
            assert!(
                matches!(got, Err(EgressError::Refused { .. })),
                "{host}: {got:?}"
            );
        }
        assert_eq!(
            check(&stub, Some(&[]), "public", 443).await,
            Ok(vec!["93.184.216.34:443".parse().expect("addr")])
        );
        assert_eq!(
            check(&stub, Some(&[]), "nowhere", 80).await,
            Err(EgressError::Unresolved("nowhere".into()))
        );
        assert_eq!(
            check(&stub, None, "public", 443).await,
            Err(EgressError::Off)
        );
    }

    #[tokio::test]
    async fn the_allow_list_takes_hosts_addresses_and_ranges() {
        let stub = Stub(vec![
            ("receiver.local", "127.0.0.1"),
            ("intranet", "10.1.2.3"),
        ]);
        let allow = vec!["receiver.local".to_string(), "10.0.0.0/8".to_string()];
        assert!(check(&stub, Some(&allow), "receiver.local", 80)
            .await
            .is_ok());
        assert!(check(&stub, Some(&allow), "intranet", 80).await.is_ok());
        assert!(check(&stub, Some(&allow), "127.0.0.1", 80).await.is_err());
        assert!(check(&stub, Some(&["127.0.0.1".into()]), "127.0.0.1", 80)
            .await
            .is_ok());
    }

    /// The SSRF table: every URL here is refused before anything is dialled (the stub
    /// resolver answers names; addresses are judged as the URL parser reads them).
    #[tokio::test]
    async fn the_ssrf_table_refuses_every_vector() {
        let stub = Stub(vec![
            ("metadata.google.internal", "169.254.169.254"),
            ("localtest.me", "127.0.0.1"),
            ("intranet.corp", "10.0.0.5"),
            ("mixed.example", "93.184.216.34"),
            ("mixed.example", "192.168.0.10"),
            ("six.example", "fe80::1"),
            ("ula.example", "fd12:3456::1"),
            ("public.example", "93.184.216.34"),
        ]);
        let vectors = [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://[::1]/",
            "http://[::]/",
            "http://0.0.0.0/",
            "http://0/",
            "http://localhost/",
            "http://localtest.me/",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://100.127.255.254/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[ff02::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://six.example/",
            "http://ula.example/",
            "http://intranet.corp:8080/",
            "http://mixed.example/",
            "http://user:pass@public.example/",
            "http://public.example@127.0.0.1/",
            "https://public.example:443@10.0.0.1/",
            "ftp://public.example/",
            "file:///etc/passwd",
            "gopher://public.example:70/",
            "javascript:alert(1)",
            "http:///nohost",
            "http://[::127.0.0.2]/compat",
            "http://[::10.0.0.1]/",
            "http://[::8.8.8.8]/",
            "http://[2002:7f00:1::1]/",
            "http://[2002:a9fe:a9fe::]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://192.0.0.1/",
            "http://192.0.0.170/",
        ];
        assert!(vectors.len() >= 49);
        for url in vectors {
            let got = check_url(&stub, Some(&[]), url).await;
            assert!(got.is_err(), "{url} was allowed: {got:?}");
        }
        assert!(check_url(&stub, Some(&[]), "https://public.example/hook")
            .await
            .is_ok());
        // The allow list exempts a named host (a local test receiver), nothing else.
        let allow = vec!["localtest.me".to_string()];
        assert!(check_url(&stub, Some(&allow), "http://localtest.me:9000/")
            .await
            .is_ok());
        assert!(check_url(&stub, Some(&allow), "http://127.0.0.1:9000/")
            .await
            .is_err());
    }

    /// A loopback server answering `/big` with 2 MiB (with its length), `/stream` with an
    /// endless chunked body, `/small` with a little JSON.
    async fn answering_server() -> String {
        use axum::routing::get;
        let endless = || async {
            let chunks = futures::stream::repeat_with(|| {
                Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 64 * 1024]))
            });
            axum::body::Body::from_stream(chunks)
        };
        let app = axum::Router::new()
            .route("/big", get(|| async { vec![b' '; 2 << 20] }))
            .route("/stream", get(endless))
            .route("/small", get(|| async { r#"{"value":"ok"}"# }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn answers_are_read_up_to_a_cap_never_whole() {
        let base = answering_server().await;
        let get = |path: &str| reqwest::get(format!("{base}{path}"));
        let small: serde_json::Value = read_json(get("/small").await.expect("answer"))
            .await
            .expect("small");
        assert_eq!(small["value"], "ok");
        for path in ["/big", "/stream"] {
            let got = read_json::<serde_json::Value>(get(path).await.expect("answer")).await;
            assert!(matches!(got, Err(AnswerError::TooLarge)), "{path}: {got:?}");
        }
    }

    #[test]
    fn six_to_four_with_a_public_relay_is_public() {
        assert_eq!(non_public("2002:5db8:d822::1".parse().expect("ip")), None);
        assert_eq!(non_public("2606:4700::1111".parse().expect("ip")), None);
    }

    #[test]
    fn a_bad_url_never_displays_the_url() {
        let e = parse_url("https://u:hunter2-token@hooks.example/x").expect_err("refused");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = parse_url("ftp://hooks.example/?token=s3cr3t").expect_err("refused");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn urls_are_checked_for_shape() {
        assert!(parse_url("https://rotate.example.com/next").is_ok());
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("https://user:pw@x/").is_err());
        assert!(parse_url("not a url").is_err());
    }
}
