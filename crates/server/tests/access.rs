//! Every route of the route table against every kind of credential, on the real
//! server over HTTP: the access rules hold, the failures say 401 (who are you?)
//! or 403 (not this), and nothing is left without a rule (the router is built
//! from the same table these tests walk).

use std::time::Duration;

use babelcast_core::Secret;
use babelcast_jobs::{Db, NewVideo};
use babelcast_media::LadderConfig;
use babelcast_pipeline::{Pipeline, PipelineConfig, SpeechConfig};
use babelcast_process::Program;
use babelcast_server::{LinkKind, Route, Rule, Scope, ServerConfig, Signer};
use reqwest::Method;

const TOKEN: &str = "admin-token";
const KEY: &[u8] = b"signing-key";

struct Server {
    url: String,
    db: Db,
    signer: Signer,
    _tmp: tempfile::TempDir,
}

async fn start() -> Server {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let db = Db::open(&data.join("babelcast.db")).await.expect("db");
    let config = PipelineConfig {
        data_dir: data.clone(),
        models_dir: babelcast_models::default_dir(),
        ffmpeg: Program::ffmpeg(),
        ffprobe: Program::ffprobe(),
        probe_timeout: Duration::from_secs(60),
        speech: SpeechConfig::default(),
        ladder: LadderConfig::default(),
        lease: Duration::from_secs(10),
        max_attempts: 1,
        backoff: Duration::from_millis(100),
        apertium: Program::apertium(),
        espeak: Program::espeak_ng(),
        s3: None,
        keep_source: true,
    };
    // No workers: the rules are checked before any handler does work.
    let pipeline = Pipeline::new(db.clone(), config).expect("pipeline");
    let signer = Signer::new(KEY.to_vec());
    let config = ServerConfig::new(Secret::new(TOKEN), signer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = babelcast_server::router(pipeline, config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { url, db, signer, _tmp: tmp }
}

async fn video(db: &Db, id: &str) {
    let new = NewVideo {
        id: id.into(),
        source_name: "secret-name.mp4".into(),
        source_sha256: "00".repeat(32),
        source_ext: "mp4".into(),
        options: serde_json::json!({ "to": ["es"] }),
    };
    db.create_video(&new, "probe", 1).await.expect("video");
}

/// A credential of the matrix, and what it is.
#[derive(Debug, Clone)]
enum Who {
    Nobody,
    WrongToken,
    Admin,
    Key(Scope),
    RevokedKey,
    Link(LinkKind, &'static str),
    ExpiredLink,
    TamperedLink,
    RevokedLink,
}

/// What a request with `who` on a route with `rule` must get: `None` for "let
/// through" (whatever the handler then says), else 401 or 403.
fn expected(rule: Rule, who: &Who) -> Option<u16> {
    let need = match rule {
        Rule::Public => return None,
        Rule::Signed => unreachable!("checked on its own"),
        Rule::Key(need) | Rule::Video(need) => need,
    };
    match who {
        Who::Nobody
        | Who::WrongToken
        | Who::RevokedKey
        | Who::ExpiredLink
        | Who::TamperedLink
        | Who::RevokedLink => Some(401),
        Who::Admin => None,
        Who::Key(scope) => (!scope.grants(need)).then_some(403),
        Who::Link(kind, video) => {
            let opens = match kind {
                LinkKind::View => need == Scope::Play,
                LinkKind::Review => Scope::Review.grants(need),
            };
            let ok = matches!(rule, Rule::Video(_)) && *video == "a" && opens;
            (!ok).then_some(403)
        }
    }
}

fn concrete(route: &Route, link: &str) -> String {
    route
        .path
        .replace("{id}", "a")
        .replace("{lang}", "es")
        .replace("{key}", "nokey")
        .replace("{stage}", "transcribe")
        .replace("{link}", link)
        .replace("{token}", "x")
        .replace("{*path}", "master.m3u8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_credential_its_rule_does_not_allow() {
    let server = start().await;
    for id in ["a", "b", "c"] {
        video(&server.db, id).await;
    }
    let client = reqwest::Client::new();
    let admin = |method: Method, path: &str| {
        client.request(method, format!("{}{path}", server.url)).bearer_auth(TOKEN)
    };

    // Keys through the API: one per scope, and one revoked.
    let mut keys = std::collections::HashMap::new();
    for scope in Scope::GRANTABLE {
        let created: serde_json::Value = admin(Method::POST, "/v1/keys")
            .json(&serde_json::json!({ "name": scope.as_str(), "scopes": [scope.as_str()] }))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        keys.insert(scope, created["key"].as_str().expect("key").to_owned());
    }
    let revoked: serde_json::Value = admin(Method::POST, "/v1/keys")
        .json(&serde_json::json!({ "name": "gone", "scopes": ["admin"] }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let gone = admin(Method::DELETE, &format!("/v1/keys/{}", revoked["id"].as_str().expect("id")))
        .send()
        .await
        .expect("revoke");
    assert_eq!(gone.status(), 204);
    let listed: serde_json::Value =
        admin(Method::GET, "/v1/keys").send().await.expect("list").json().await.expect("json");
    assert!(
        !listed.to_string().contains(keys[&Scope::Admin].rsplit('_').next().expect("secret")),
        "no secrets listed"
    );

    // Links: a revoked one (made before the revoke), then fresh ones.
    let link = |kind: LinkKind, id: &str, generation: i64, expiry: i64| {
        server.signer.link(kind, id, generation, expiry)
    };
    let later = babelcast_jobs::now_ms() / 1000 + 3600;
    let revoked_link = link(LinkKind::Review, "a", 0, later);
    let revoke = admin(Method::POST, "/v1/videos/a/links/revoke").send().await.expect("revoke");
    assert_eq!(revoke.status(), 200);
    let made: serde_json::Value = admin(Method::POST, "/v1/videos/a/links/review")
        .send()
        .await
        .expect("link")
        .json()
        .await
        .expect("json");
    let review_a = made["token"].as_str().expect("token").to_owned();
    assert!(made["url"].as_str().expect("url").starts_with("/review/a/bl_"), "{made}");
    let view_a = link(LinkKind::View, "a", 1, later);
    let review_b = link(LinkKind::Review, "b", 0, later);
    let expired = link(LinkKind::Review, "a", 1, 1000);
    let tampered = review_a.replacen(".a.", ".b.", 1);

    let credentials: Vec<(Who, Option<String>)> = vec![
        (Who::Nobody, None),
        (Who::WrongToken, Some("not-the-token".into())),
        (Who::Admin, Some(TOKEN.into())),
        (Who::RevokedKey, revoked["key"].as_str().map(str::to_owned)),
        (Who::Link(LinkKind::Review, "a"), Some(review_a.clone())),
        (Who::Link(LinkKind::View, "a"), Some(view_a)),
        (Who::Link(LinkKind::Review, "b"), Some(review_b)),
        (Who::ExpiredLink, Some(expired)),
        (Who::TamperedLink, Some(tampered)),
        (Who::RevokedLink, Some(revoked_link)),
    ]
    .into_iter()
    .chain(Scope::GRANTABLE.into_iter().map(|s| (Who::Key(s), Some(keys[&s].clone()))))
    .collect();

    let routes = babelcast_server::routes();
    let mut checked = 0;
    for route in routes.iter().filter(|r| r.rule != Rule::Signed) {
        // Revoking a video's links would spoil the links of the rest of the walk:
        // that route runs on video c, whose links none of the credentials are.
        let path = concrete(route, &review_a);
        // Deleting one would end its links too: that route runs on video d.
        let path = if route.path.ends_with("/links/revoke") {
            path.replacen("/videos/a/", "/videos/c/", 1)
        } else if route.method == Method::DELETE && route.path == "/v1/videos/{id}" {
            path.replacen("/videos/a", "/videos/d", 1)
        } else {
            path
        };
        for (who, bearer) in &credentials {
            let mut request = client.request(route.method.clone(), format!("{}{path}", server.url));
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let status = request.send().await.expect("request").status().as_u16();
            match expected(route.rule, who) {
                Some(code) => assert_eq!(status, code, "{} {} with {who:?}", route.method, route.path),
                None => assert!(
                    status != 401 && status != 403,
                    "{} {} with {who:?} was refused: {status}",
                    route.method,
                    route.path
                ),
            }
            checked += 1;
        }
    }
    assert!(checked >= 20 * credentials.len(), "{checked}");

    // The signed playback files: only a valid token for that video opens them.
    let good = server.signer.token("a", later);
    for (token, want) in [
        (good.clone(), 404), // valid, but nothing is packaged yet
        (server.signer.token("b", later), 403),
        (server.signer.token("a", 1000), 403),
        (good.replacen('-', "-0", 1), 403),
        ("nonsense".to_owned(), 403),
    ] {
        let status = reqwest::get(format!("{}/v1/play/a/{token}/master.m3u8", server.url))
            .await
            .expect("get")
            .status()
            .as_u16();
        assert_eq!(status, want, "play token {token}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_video_list_pages_newest_first_by_cursor_and_filters_by_state() {
    let server = start().await;
    let mut made = Vec::new();
    for n in 0..7 {
        let id = format!("v{n}");
        video(&server.db, &id).await;
        made.push(id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    made.reverse();
    let client = reqwest::Client::new();
    let list =
        |query: String| client.get(format!("{}/v1/videos?{query}", server.url)).bearer_auth(TOKEN).send();
    let (mut seen, mut cursor, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page: serde_json::Value =
            list(format!("limit=3&cursor={cursor}")).await.expect("list").json().await.expect("json");
        pages += 1;
        seen.extend(
            page["videos"]
                .as_array()
                .expect("videos")
                .iter()
                .map(|v| v["id"].as_str().unwrap_or("").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((seen, pages), (made, 3), "newest first, each once");
    let failed: serde_json::Value =
        list("state=failed".into()).await.expect("list").json().await.expect("json");
    assert_eq!(failed["videos"], serde_json::json!([]));
    let bad = list("state=nope".into()).await.expect("list");
    assert_eq!(bad.status(), 400);
}

#[test]
fn the_openapi_description_lists_every_documented_route_with_its_security() {
    let doc = serde_json::to_value(babelcast_server::openapi()).expect("json");
    for route in babelcast_server::routes() {
        let path = route.path.replace("{*", "{");
        let operation = &doc["paths"][&path][route.method.as_str().to_lowercase()];
        if !route.documented {
            assert!(operation.is_null(), "{path} is not documented");
            continue;
        }
        assert!(operation.is_object(), "{} {path} is missing from the description", route.method);
        let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
        let open = matches!(route.rule, Rule::Public | Rule::Signed);
        assert_eq!(secured, !open, "{} {path}: {operation}", route.method);
        let said = operation["description"].as_str().unwrap_or_default();
        assert!(said.contains("Access:"), "{} {path} says who may use it: {said}", route.method);
    }
    let documented = babelcast_server::routes().iter().filter(|r| r.documented).count();
    let listed: usize =
        doc["paths"].as_object().expect("paths").values().map(|p| p.as_object().map_or(0, |o| o.len())).sum();
    assert_eq!(listed, documented, "the description lists exactly the table's routes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_hold_no_data_and_allow_no_inline_script() {
    let server = start().await;
    video(&server.db, "a").await;
    for path in ["/review/a", "/review/a/bl_x", "/watch/a/bl_x"] {
        let response = reqwest::get(format!("{}{path}", server.url)).await.expect("get");
        assert_eq!(response.status(), 200, "{path}");
        let policy = response.headers()["content-security-policy"].to_str().expect("csp").to_owned();
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline'; s"), "{policy}");
        assert!(
            !policy.split(';').any(|d| d.contains("script-src") && d.contains("unsafe-inline")),
            "{policy}"
        );
        let page = response.text().await.expect("text");
        assert!(!page.contains("secret-name"), "the source's name is not shown to anyone: {path}");
        assert!(!page.contains("<script>"), "no inline script: {path}");
    }
}
