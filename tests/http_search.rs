//! `/api/search` and `/api/library` when they cannot answer: a query with
//! no word to search for is a 400, a process outside a ring a 503, each
//! with a one-line reason; the player's script is served. (With a ring,
//! tests/web_catalog.rs and tests/catalog_e2e.rs search for real.)

#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/http_fixture.rs"]
mod http_fixture;
#[path = "support/manifest_bencode.rs"]
mod manifest_bencode;

use http_client::get;
use http_fixture::one_song;

#[tokio::test]
async fn a_search_without_words_or_without_a_ring_gets_a_clear_refusal() {
    let f = one_song(40_000, 16 * 1024).await;
    for target in [
        "/api/search",
        "/api/search?q=",
        "/api/search?q=the%20a%20%21",
    ] {
        let r = get(f.addr, target).await;
        assert_eq!(r.status, 400, "{target}");
        let why = String::from_utf8_lossy(&r.body);
        assert!(why.contains("no word to search for"), "{target}: {why}");
    }
    for target in ["/api/search?q=sunrise", "/api/library"] {
        let r = get(f.addr, target).await;
        assert_eq!(r.status, 503, "{target}");
        let why = String::from_utf8_lossy(&r.body);
        assert!(why.contains("not in a ring"), "{target}: {why}");
    }
    let script = get(f.addr, "/catalog.js").await;
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").starts_with("text/javascript"));
    assert!(String::from_utf8_lossy(&script.body).contains("/api/search?q="));
    // The player page loads it.
    let page = get(f.addr, "/").await;
    assert!(String::from_utf8_lossy(&page.body).contains("<script src=\"/catalog.js\">"));
}
